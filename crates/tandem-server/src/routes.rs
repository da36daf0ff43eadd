//! A thin wrapper over axum's router that records every (method, path) it serves, so a
//! test can check that the access table and the OpenAPI document miss no route.

use axum::handler::Handler;
use axum::routing::{delete, get, post, put};
use axum::Router;
use serde::Serialize;

use crate::AppState;

/// One served route: `GET /api/v1/me`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RouteInfo {
    pub method: &'static str,
    pub path: &'static str,
}

pub struct Routes {
    router: Router<AppState>,
    list: Vec<RouteInfo>,
}

impl Routes {
    pub(crate) fn new() -> Routes {
        Routes {
            router: Router::new(),
            list: Vec::new(),
        }
    }

    fn add(
        &mut self,
        method: &'static str,
        path: &'static str,
        mr: axum::routing::MethodRouter<AppState>,
    ) {
        self.list.push(RouteInfo { method, path });
        let router = std::mem::take(&mut self.router);
        self.router = router.route(path, mr);
    }

    pub(crate) fn get<H, T>(&mut self, path: &'static str, h: H)
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add("GET", path, get(h));
    }

    pub(crate) fn post<H, T>(&mut self, path: &'static str, h: H)
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add("POST", path, post(h));
    }

    pub(crate) fn put<H, T>(&mut self, path: &'static str, h: H)
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add("PUT", path, put(h));
    }

    #[allow(dead_code)]
    pub(crate) fn delete<H, T>(&mut self, path: &'static str, h: H)
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add("DELETE", path, delete(h));
    }

    pub(crate) fn finish(self) -> (Router<AppState>, Vec<RouteInfo>) {
        let mut list = self.list;
        list.sort();
        (self.router, list)
    }
}
