//! HTML pages: the embedded tera templates, typed contexts, and friendly error pages.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde::Serialize;
use tera::Tera;

/// Every template, embedded so the binary runs from any directory.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("signin.html", include_str!("../templates/signin.html")),
    ("signout.html", include_str!("../templates/signout.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("home.html", include_str!("../templates/home.html")),
];

/// The site name in titles and the header.
pub const APP_NAME: &str = "Web app";

static TERA: LazyLock<Result<Tera, String>> = LazyLock::new(|| {
    let mut tera = Tera::default();
    tera.add_raw_templates(TEMPLATES.iter().copied())
        .map_err(|e| format!("{e:?}"))?;
    Ok(tera)
});

/// Parses the templates now, so a broken template stops start-up instead of a page.
pub fn check_templates() -> anyhow::Result<()> {
    TERA.as_ref()
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("templates: {e}"))
}

/// The signed-in user as the layout shows them.
#[derive(Debug, Clone, Serialize)]
pub struct LayoutUser {
    /// Display name.
    pub name: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
}

/// What every page's layout needs.
#[derive(Debug, Clone, Serialize)]
pub struct Layout {
    /// The signed-in user, if any.
    pub user: Option<LayoutUser>,
    /// CSRF token for the sign-out button (empty when nobody is signed in).
    pub csrf_token: String,
    /// Site name.
    pub app_name: &'static str,
}

impl Layout {
    /// The layout for an anonymous visitor.
    pub fn anonymous() -> Self {
        Self {
            user: None,
            csrf_token: String::new(),
            app_name: APP_NAME,
        }
    }
}

/// The sign-in page.
#[derive(Debug, Serialize)]
pub struct SignInPage {
    /// Layout.
    #[serde(flatten)]
    pub layout: Layout,
    /// CSRF token for the sign-in form.
    pub csrf_token: String,
    /// Where to go after sign-in (the form's `callbackUrl`).
    pub after_signin: String,
    /// Path segment of the provider.
    pub provider_id: String,
    /// Button label's name.
    pub provider_name: String,
    /// A message for a failed or refused sign-in.
    pub error_message: Option<&'static str>,
}

/// The sign-out confirmation page.
#[derive(Debug, Serialize)]
pub struct SignOutPage {
    /// Layout (its CSRF token is the one the form submits).
    #[serde(flatten)]
    pub layout: Layout,
}

/// The home page.
#[derive(Debug, Serialize)]
pub struct HomePage {
    /// Layout.
    #[serde(flatten)]
    pub layout: Layout,
    /// The `useSession()` JSON, pretty-printed.
    pub session_json: String,
    /// HTTP status of the API call, if it was made.
    pub api_status: Option<u16>,
    /// The API's JSON, pretty-printed.
    pub api_json: Option<String>,
    /// Why the API could not be shown.
    pub api_error: Option<&'static str>,
}

/// An error page.
#[derive(Debug, Serialize)]
struct ErrorPage {
    #[serde(flatten)]
    layout: Layout,
    title: &'static str,
    message: &'static str,
    action_href: &'static str,
    action_label: &'static str,
}

/// Renders `template` with `context` as an HTML response with `status`.
pub fn render(status: StatusCode, template: &str, context: &impl Serialize) -> HttpResponse {
    match render_string(template, context) {
        Ok(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(html),
        Err(error) => {
            tracing::error!(%error, template, "template rendering failed");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("Something went wrong. Please try again.")
        }
    }
}

fn render_string(template: &str, context: &impl Serialize) -> Result<String, String> {
    let tera = TERA.as_ref().map_err(Clone::clone)?;
    let context = tera::Context::from_serialize(context).map_err(|e| format!("{e:?}"))?;
    tera.render(template, &context)
        .map_err(|e| format!("{e:?}"))
}

/// The error kinds NextAuth's `/api/auth/error?error=…` knows, with friendly texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The web app cannot reach or use the provider.
    Configuration,
    /// The user (or provider) refused the sign-in.
    AccessDenied,
    /// The sign-in could not start.
    OAuthSignin,
    /// The provider's answer could not be verified.
    OAuthCallback,
    /// A page needs a signed-in user.
    SessionRequired,
    /// A form was posted without a valid CSRF token.
    Csrf,
    /// No such page.
    NotFound,
    /// Anything else.
    Default,
}

impl ErrorKind {
    /// Parses the `error` query parameter (unknown values are `Default`).
    pub fn from_code(code: &str) -> Self {
        match code {
            "Configuration" => Self::Configuration,
            "AccessDenied" => Self::AccessDenied,
            "OAuthSignin" => Self::OAuthSignin,
            "OAuthCallback" => Self::OAuthCallback,
            "SessionRequired" => Self::SessionRequired,
            _ => Self::Default,
        }
    }

    /// The HTTP status of the page.
    pub fn status(self) -> StatusCode {
        match self {
            Self::Configuration => StatusCode::SERVICE_UNAVAILABLE,
            Self::AccessDenied | Self::Csrf => StatusCode::FORBIDDEN,
            Self::SessionRequired => StatusCode::UNAUTHORIZED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::OAuthSignin | Self::OAuthCallback | Self::Default => StatusCode::BAD_REQUEST,
        }
    }

    fn texts(self) -> (&'static str, &'static str) {
        match self {
            Self::Configuration => (
                "Sign-in is unavailable",
                "The sign-in service cannot be reached right now. Please try again in a moment.",
            ),
            Self::AccessDenied => ("Access denied", "You do not have permission to sign in."),
            Self::OAuthSignin => (
                "Sign-in could not start",
                "Something went wrong while starting the sign-in. Please try again.",
            ),
            Self::OAuthCallback => (
                "Sign-in could not be completed",
                "The sign-in could not be verified, or its link has expired or was already used. Please sign in again.",
            ),
            Self::SessionRequired => ("Please sign in", "Please sign in to view this page."),
            Self::Csrf => (
                "The form has expired",
                "This form is no longer valid. Please go back, reload the page and try again.",
            ),
            Self::NotFound => ("Page not found", "There is nothing at this address."),
            Self::Default => (
                "Something went wrong",
                "Something went wrong. Please try again.",
            ),
        }
    }

    /// The message shown on the sign-in page for `?error=…` (NextAuth's wording where it has one).
    pub fn signin_message(code: &str) -> &'static str {
        match code {
            "AccessDenied" => "Sign-in was cancelled or refused. You can try again.",
            "SessionRequired" => "Please sign in to view this page.",
            "RefreshAccessTokenError" => "Your session has expired. Please sign in again.",
            "OAuthCallback" | "OAuthSignin" | "Callback" => {
                "Sign-in could not be completed. Please try again."
            }
            "Configuration" => {
                "The sign-in service cannot be reached right now. Please try again in a moment."
            }
            _ => "Unable to sign in. Please try again.",
        }
    }
}

/// A friendly error page: a title, a sentence and a way on, never internals.
pub fn error_page(kind: ErrorKind) -> HttpResponse {
    error_page_with(kind, Layout::anonymous())
}

/// [`error_page`] with the visitor's layout (who is signed in, the sign-out button).
pub fn error_page_with(kind: ErrorKind, layout: Layout) -> HttpResponse {
    let mut response = build_error_page(kind, kind.status(), layout);
    if kind == ErrorKind::Configuration {
        // Tell well-behaved clients when to come back while the provider is unreachable.
        response.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from_static("5"),
        );
    }
    response
}

/// The page for an error named in the query (`/api/auth/error?error=…`). It reports what
/// happened in an earlier request, so it is never a server failure here: anyone can ask for
/// `?error=Configuration` while all is well, and monitoring must not count that as a 5xx.
pub fn named_error_page(kind: ErrorKind) -> HttpResponse {
    let status = if kind.status().is_server_error() {
        StatusCode::BAD_REQUEST
    } else {
        kind.status()
    };
    build_error_page(kind, status, Layout::anonymous())
}

fn build_error_page(kind: ErrorKind, status: StatusCode, layout: Layout) -> HttpResponse {
    let (title, message) = kind.texts();
    let (action_href, action_label) = match kind {
        ErrorKind::NotFound | ErrorKind::Default => ("/", "Go to the home page"),
        _ => ("/api/auth/signin", "Sign in"),
    };
    render(
        status,
        "error.html",
        &ErrorPage {
            layout,
            title,
            message,
            action_href,
            action_label,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed_in_layout() -> Layout {
        Layout {
            user: Some(LayoutUser {
                name: Some("Alice <Example>".into()),
                email: Some("alice@example.com".into()),
            }),
            csrf_token: "csrf-123".into(),
            app_name: APP_NAME,
        }
    }

    #[test]
    fn every_template_renders() {
        check_templates().unwrap();
        let signin = render_string(
            "signin.html",
            &SignInPage {
                layout: Layout::anonymous(),
                csrf_token: "csrf-abc".into(),
                after_signin: "/reports?x=1".into(),
                provider_id: "provider".into(),
                provider_name: "My IdP".into(),
                error_message: Some("Sign-in was cancelled."),
            },
        )
        .unwrap();
        assert!(signin.contains("Sign in with My IdP"));
        assert!(signin.contains(r#"action="/api/auth/signin/provider""#));
        assert!(signin.contains(r#"value="csrf-abc""#));
        assert!(signin.contains("Sign-in was cancelled."));
        assert!(signin.contains("Not signed in"));

        let signout = render_string(
            "signout.html",
            &SignOutPage {
                layout: signed_in_layout(),
            },
        )
        .unwrap();
        assert!(signout.contains(r#"value="csrf-123""#));

        let home = render_string(
            "home.html",
            &HomePage {
                layout: signed_in_layout(),
                session_json: "{\n  \"status\": \"authenticated\"\n}".into(),
                api_status: Some(200),
                api_json: Some("{\"sub\": \"u1\"}".into()),
                api_error: None,
            },
        )
        .unwrap();
        // Autoescaping keeps user-controlled names from becoming markup.
        assert!(home.contains("Alice &lt;Example&gt;"));
        assert!(home.contains("(alice@example.com)"));
        assert!(home.contains("&quot;status&quot;: &quot;authenticated&quot;"));
        assert!(home.contains("HTTP 200"));
        assert!(home.contains(r#"action="/api/auth/signout""#));

        for kind in [
            ErrorKind::Configuration,
            ErrorKind::AccessDenied,
            ErrorKind::OAuthSignin,
            ErrorKind::OAuthCallback,
            ErrorKind::SessionRequired,
            ErrorKind::Csrf,
            ErrorKind::NotFound,
            ErrorKind::Default,
        ] {
            let (title, message) = kind.texts();
            let page = render_string(
                "error.html",
                &ErrorPage {
                    layout: Layout::anonymous(),
                    title,
                    message,
                    action_href: "/",
                    action_label: "Home",
                },
            )
            .unwrap();
            assert!(page.contains(title));
        }
    }

    #[test]
    fn unknown_error_codes_are_default() {
        assert_eq!(ErrorKind::from_code("<script>"), ErrorKind::Default);
        assert_eq!(
            ErrorKind::from_code("AccessDenied"),
            ErrorKind::AccessDenied
        );
    }
}
