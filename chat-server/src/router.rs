//! The router over the route table: from a request path to the rows of that path, and what a
//! 405 says when none of them has the request's method.

use hyper::Method;
use hyper::header::HeaderValue;

use crate::route::Route;

/// The rows of one path template, with what the router needs at request time.
pub(crate) struct Path {
    /// The path template, as the request log names the route.
    pub(crate) template: &'static str,
    routes: Vec<&'static Route>,
    /// The `Allow` header of a 405, made once.
    pub(crate) allow: HeaderValue,
}

impl Path {
    /// The row of this path for `method`, if there is one.
    pub(crate) fn route(&self, method: &Method) -> Option<&'static Route> {
        self.routes.iter().copied().find(|r| r.method == method)
    }
}

/// The router over `table`.
pub(crate) fn router(table: &'static [Route]) -> matchit::Router<Path> {
    let mut paths: Vec<Path> = Vec::new();
    for route in table {
        match paths.iter_mut().find(|p| p.template == route.path) {
            Some(path) => path.routes.push(route),
            None => paths.push(Path {
                template: route.path,
                routes: vec![route],
                allow: HeaderValue::from_static(""),
            }),
        }
    }
    let mut router = matchit::Router::new();
    for mut path in paths {
        let allow = path
            .routes
            .iter()
            .map(|r| r.method.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        path.allow = HeaderValue::from_str(&allow).expect("method names are valid header text");
        router
            .insert(path.template, path)
            .expect("the route table has no conflicting paths");
    }
    router
}
