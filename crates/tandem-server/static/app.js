// Tandem's one script. Progressive: pages render on the server; this file sends forms
// marked data-api to the JSON API (with the CSRF token from the page), streams chat
// replies (fetch + server-sent events), and shows live alerts to clinicians.
'use strict';

(function () {
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute('content') : '';
  // On a record opened with emergency (break-glass) access, every change carries the reason.
  var glass = document.querySelector('[data-break-glass-reason]');
  var apiHeaders = { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf };
  if (glass) { apiHeaders['X-Break-Glass-Reason'] = glass.getAttribute('data-break-glass-reason'); }

  // Say which page of the navigation this is (screen readers announce "current page").
  Array.prototype.forEach.call(document.querySelectorAll('nav .nav-list a'), function (a) {
    var here = window.location.pathname;
    var to = a.getAttribute('href');
    if (here === to || (to !== '/' && here.indexOf(to + '/') === 0)) { a.setAttribute('aria-current', 'page'); }
  });

  function pick(obj, path) {
    return path.split('.').reduce(function (o, k) { return o == null ? o : o[k]; }, obj);
  }

  function formJson(form) {
    var out = {};
    if (form.dataset.kind === 'answers') {
      var n = parseInt(form.dataset.count || '0', 10);
      var answers = [];
      for (var i = 1; i <= n; i++) {
        var c = form.querySelector('input[name="item-' + i + '"]:checked');
        answers.push(c ? parseInt(c.value, 10) : null);
      }
      return { answers: answers };
    }
    Array.prototype.forEach.call(form.elements, function (el) {
      // data-skip: fields only the plain (no-script) form needs, such as its CSRF token.
      if (!el.name || el.disabled || el.hasAttribute('data-skip')) { return; }
      var t = el.dataset.type;
      var v = el.value;
      if (t === 'number') { out[el.name] = v === '' ? null : Number(v); }
      else if (t === 'list') { out[el.name] = v.split(',').map(function (s) { return s.trim(); }).filter(Boolean); }
      else if (t === 'bool') { out[el.name] = v === 'true'; }
      else { out[el.name] = v; }
    });
    return out;
  }

  function say(form, text, isError) {
    var s = form.querySelector('[data-status]');
    if (s) { s.textContent = text; s.classList.toggle('error', !!isError); }
  }

  function utcNow() {
    var d = new Date();
    function two(n) { return (n < 10 ? '0' : '') + n; }
    return d.getUTCFullYear() + '-' + two(d.getUTCMonth() + 1) + '-' + two(d.getUTCDate()) + ' ' +
      two(d.getUTCHours()) + ':' + two(d.getUTCMinutes()) + ' UTC';
  }

  // An acknowledged alert stays in the list, saying who acknowledged it and when.
  function acknowledged(form) {
    var note = document.createElement('span');
    note.className = 'tag';
    note.textContent = 'Acknowledged by ' + (document.body.dataset.user || 'you') + ' at ' + utcNow();
    var li = form.closest('li');
    form.replaceWith(note);
    if (li) { li.classList.add('acknowledged'); }
  }

  document.addEventListener('submit', function (ev) {
    var form = ev.target;
    if (!form.dataset || !form.dataset.api) { return; }
    ev.preventDefault();
    var btn = form.querySelector('button[type="submit"]');
    if (btn) { btn.disabled = true; }
    fetch(form.dataset.api, {
      method: form.dataset.method || 'POST',
      credentials: 'same-origin',
      headers: apiHeaders,
      body: JSON.stringify(formJson(form))
    }).then(function (resp) {
      return resp.text().then(function (t) {
        var body = null;
        try { body = t ? JSON.parse(t) : null; } catch (e) { body = null; }
        if (!resp.ok) {
          say(form, (body && body.error) || 'Something went wrong. Please try again.', true);
          return;
        }
        var then = form.dataset.then;
        if (then === 'reload') { window.location.reload(); return; }
        if (then === 'remove') { var li = form.closest('li'); if (li) { li.remove(); } return; }
        if (then === 'acknowledged') { acknowledged(form); return; }
        if (then && then.charAt(0) === '/') { window.location.assign(then); return; }
        if (form.dataset.show && body) {
          var parts = form.dataset.show.split(',').map(function (p) { return pick(body, p); })
            .filter(function (x) { return x != null && x !== ''; });
          say(form, parts.join('\n') || 'Saved.');
        } else {
          say(form, form.dataset.success || 'Saved.');
        }
        if (form.dataset.clear) { form.reset(); }
      });
    }).catch(function () {
      say(form, 'Could not reach Tandem. Check your connection.', true);
    }).then(function () { if (btn) { btn.disabled = false; } });
  });

  // --- chat: POST the message, read the reply as server-sent events ------------------------
  function addMessage(list, who, cls, text) {
    var li = document.createElement('li');
    li.className = 'msg ' + cls;
    var w = document.createElement('span');
    w.className = 'who';
    w.textContent = who;
    var p = document.createElement('p');
    p.className = 'text';
    p.textContent = text;
    li.appendChild(w);
    li.appendChild(p);
    list.appendChild(li);
    return p;
  }

  function parseSse(buffer, onEvent) {
    var blocks = buffer.split('\n\n');
    var rest = blocks.pop();
    blocks.forEach(function (block) {
      var name = 'message';
      var data = [];
      block.split('\n').forEach(function (line) {
        if (line.indexOf('event:') === 0) { name = line.slice(6).trim(); }
        else if (line.indexOf('data:') === 0) { data.push(line.slice(5).replace(/^ /, '')); }
      });
      if (data.length) { onEvent(name, data.join('\n')); }
    });
    return rest;
  }

  var chat = document.getElementById('chat-form');
  if (chat) {
    chat.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var input = document.getElementById('chat-input');
      var list = document.getElementById('messages');
      var status = document.getElementById('chat-status');
      var text = input.value.trim();
      if (!text) { return; }
      addMessage(list, 'You', 'msg-patient', text);
      input.value = '';
      var reply = addMessage(list, 'Tandem (AI)', 'msg-assistant', '');
      reply.parentNode.setAttribute('aria-busy', 'true');
      status.textContent = 'Tandem is replying...';
      // The first message starts the conversation.
      var ready = chat.dataset.conversation
        ? Promise.resolve(chat.dataset.conversation)
        : fetch('/api/v1/conversations', { method: 'POST', credentials: 'same-origin', headers: apiHeaders })
          .then(function (resp) {
            if (!resp.ok) { throw new Error('status ' + resp.status); }
            return resp.json();
          }).then(function (c) {
            chat.dataset.conversation = c.id;
            var none = document.getElementById('no-conversation');
            if (none) { none.remove(); }
            return c.id;
          });
      ready.then(function (cid) {
        return fetch('/api/v1/conversations/' + cid + '/messages', {
          method: 'POST',
          credentials: 'same-origin',
          headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf, 'Accept': 'text/event-stream' },
          body: JSON.stringify({ text: text })
        });
      }).then(function (resp) {
        if (!resp.ok || !resp.body) { throw new Error('status ' + resp.status); }
        var reader = resp.body.getReader();
        var decoder = new TextDecoder();
        var buf = '';
        function onEvent(name, data) {
          var d = {};
          try { d = JSON.parse(data); } catch (e) { return; }
          if (name === 'delta') { reply.textContent += d.text; }
          else if (name === 'replace') { reply.textContent = d.text; }
          else if (name === 'done') {
            reply.textContent = d.reply;
            if (d.actions && d.actions.indexOf('crisis_response') >= 0) { reply.parentNode.classList.add('msg-crisis'); }
            status.textContent = '';
          } else if (name === 'error') { status.textContent = d.error; }
        }
        function pump() {
          return reader.read().then(function (r) {
            if (r.done) { reply.parentNode.removeAttribute('aria-busy'); return; }
            buf = parseSse(buf + decoder.decode(r.value, { stream: true }).replace(/\r/g, ''), onEvent);
            return pump();
          });
        }
        return pump();
      }).catch(function () {
        status.textContent = 'Your message could not be sent. If you need help now, use "Get help now".';
      });
    });
  }

  // --- live alerts for clinicians ----------------------------------------------------------
  var baseTitle = document.title;
  var unseen = 0;
  function beep() {
    try {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      var ctx = new Ctx();
      var osc = ctx.createOscillator();
      var gain = ctx.createGain();
      osc.frequency.value = 880;
      gain.gain.value = 0.1;
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start();
      osc.stop(ctx.currentTime + 0.2);
    } catch (e) { /* sound is a bonus: the title and the list carry the alert */ }
  }
  document.addEventListener('visibilitychange', function () {
    if (!document.hidden) { unseen = 0; document.title = baseTitle; }
  });
  var live = document.querySelector('[data-alert-stream]');
  var liveStatus = document.getElementById('live-status');
  function setLive(state, text) {
    if (!liveStatus) { return; }
    liveStatus.dataset.state = state;
    liveStatus.textContent = text;
  }
  if (live && !window.EventSource) {
    setLive('unsupported', 'This browser cannot show live alerts: reload the page to see new ones.');
  }
  if (live && window.EventSource) {
    var es = new EventSource(live.dataset.alertStream);
    es.addEventListener('ready', function () {
      setLive('connected', 'Live alerts are on: new alerts appear here without reloading.');
    });
    es.addEventListener('error', function () {
      setLive('reconnecting', 'Live alerts are reconnecting. Reload the page if this message stays.');
    });
    es.addEventListener('alert', function (ev) {
      var a = {};
      try { a = JSON.parse(ev.data); } catch (e) { return; }
      var li = document.createElement('li');
      li.className = 'alert level-' + a.level;
      li.id = 'live-alert-' + a.id;
      var link = document.createElement('a');
      link.href = '/clinician/patients/' + a.patient;
      link.textContent = a.username || 'Patient';
      li.appendChild(link);
      li.appendChild(document.createTextNode(': ' + a.level + ' risk, just now '));
      if (a.escalated) {
        var note = document.createElement('strong');
        note.className = 'escalated';
        note.textContent = a.escalated_to_me
          ? 'Escalated to you (on call): nobody on the care team acknowledged it in time. '
          : 'Escalated to the on-call clinician. ';
        li.appendChild(note);
      }
      var form = document.createElement('form');
      form.className = 'inline';
      form.dataset.api = '/api/v1/alerts/' + a.id + '/acknowledge';
      form.dataset.method = 'POST';
      form.dataset.then = 'acknowledged';
      var b = document.createElement('button');
      b.type = 'submit';
      b.id = 'ack-' + a.id;
      b.textContent = 'Acknowledge';
      form.appendChild(b);
      li.appendChild(form);
      live.insertBefore(li, live.firstChild);
      unseen += 1;
      document.title = '(' + unseen + ') New alert · ' + baseTitle;
      beep();
    });
  }
})();
