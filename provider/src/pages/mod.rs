//! Server-rendered pages: the embedded tera templates, rendering helpers, the error page and
//! the CSRF tokens every form carries.

pub mod csrf;
pub mod home;

use std::sync::{Arc, OnceLock};

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use serde::Serialize;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/templates.rs"));
}

/// Every page template, parsed once from the copies embedded at build time; cheap to clone.
#[derive(Clone)]
pub struct Templates(Arc<tera::Tera>);

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Templates").field(&self.names()).finish()
    }
}

static GLOBAL: OnceLock<Templates> = OnceLock::new();

impl Templates {
    /// Parses the embedded templates (once per process; later calls share the result).
    pub fn load() -> Result<Self, tera::Error> {
        if let Some(templates) = GLOBAL.get() {
            return Ok(templates.clone());
        }
        let mut tera = tera::Tera::default();
        tera.add_raw_templates(embedded::TEMPLATES.iter().copied())?;
        let templates = Self(Arc::new(tera));
        Ok(GLOBAL.get_or_init(|| templates).clone())
    }

    /// Names of all templates, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.0.get_template_names().collect();
        names.sort_unstable();
        names
    }

    /// Renders `name` with `context` to a string.
    pub fn render_to_string(
        &self,
        name: &str,
        context: &impl Serialize,
    ) -> Result<String, tera::Error> {
        let context = tera::Context::from_serialize(context)?;
        self.0.render(name, &context)
    }
}

/// Renders a page with status 200.
pub fn render(templates: &Templates, name: &str, context: &impl Serialize) -> HttpResponse {
    render_with_status(templates, StatusCode::OK, name, context)
}

/// Renders a page with the given status; a template failure becomes a logged 500 page.
pub fn render_with_status(
    templates: &Templates,
    status: StatusCode,
    name: &str,
    context: &impl Serialize,
) -> HttpResponse {
    match templates.render_to_string(name, context) {
        Ok(body) => HttpResponse::build(status)
            .content_type(ContentType::html())
            .body(body),
        Err(error) => {
            tracing::error!(template = name, error = ?error, "rendering a page failed");
            error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The page could not be shown. Please try again later.",
            )
        }
    }
}

#[derive(Serialize)]
struct ErrorContext<'a> {
    status: u16,
    title: &'a str,
    message: &'a str,
}

/// An HTML error page (never a redirect) with `status`, a title and a message for people.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    let context = ErrorContext {
        status: status.as_u16(),
        title,
        message,
    };
    let body = Templates::load()
        .and_then(|t| t.render_to_string("error.html", &context))
        .unwrap_or_else(|error| {
            tracing::error!(error = ?error, "rendering the error page failed");
            format!("{} {title}: {message}", status.as_u16())
        });
    HttpResponse::build(status)
        .content_type(ContentType::html())
        .body(body)
}

/// `next` when it is a local path (starts with `/`, not `//` or `/\`, no control characters),
/// else `/`: login and logout never redirect to another origin.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next)
            if next.starts_with('/')
                && !next.starts_with("//")
                && !next.starts_with("/\\")
                && !next.chars().any(|c| c.is_control() || c == '\\') =>
        {
            next.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_must_be_local() {
        assert_eq!(
            safe_next(Some("/oauth/authorize?x=1")),
            "/oauth/authorize?x=1"
        );
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "evil",
            "/a\\b",
            "/a\nb",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
