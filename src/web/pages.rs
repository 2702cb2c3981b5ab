//! Page templates (`src/web/templates/`), embedded in the binary and autoescaped.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use include_dir::{include_dir, Dir};
use minijinja::Environment;
use serde::Serialize;

use crate::config::Settings;
use crate::error::AppError;
use crate::web::auth::Viewer;

static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/src/web/templates");

pub struct Pages {
    env: Environment<'static>,
}

impl Pages {
    pub fn new(settings: &Settings) -> Self {
        let mut env = crate::templating::environment();
        env.set_lstrip_blocks(true);
        env.set_loader(|name| {
            Ok(TEMPLATES
                .get_file(name)
                .and_then(|f| f.contents_utf8())
                .map(str::to_owned))
        });
        env.add_global("list_name", settings.list_name.clone());
        env.add_global("project_name", settings.project_name.clone());
        env.add_global("security_contact", settings.security_contact.to_string());
        env.add_global("timezone", settings.timezone.name());
        crate::templating::add_time_filters(&mut env, settings.timezone);
        env.add_global("lead_days", settings.lead_days);
        Self { env }
    }

    pub fn render(&self, name: &str, context: impl Serialize) -> Result<String, AppError> {
        Ok(self.env.get_template(name)?.render(context)?)
    }

    /// Renders a page for a viewer: the layout shows who is signed in, and forms get the
    /// viewer's CSRF token as `csrf_token`.
    pub fn render_for(
        &self,
        viewer: &Viewer,
        name: &str,
        context: impl Serialize,
    ) -> Result<String, AppError> {
        let context = minijinja::context! {
            user => viewer.user,
            csrf_token => viewer.csrf,
            ..minijinja::Value::from_serialize(&context)
        };
        self.render(name, context)
    }

    /// A 200 HTML response with the rendered page.
    pub fn page(
        &self,
        viewer: &Viewer,
        name: &str,
        context: impl Serialize,
    ) -> Result<HttpResponse, AppError> {
        self.page_with_status(StatusCode::OK, viewer, name, context)
    }

    /// An HTML response with a status of the caller's choosing, e.g. a form that re-renders
    /// with its errors. Pages may show personal data, so no cache keeps them.
    pub fn page_with_status(
        &self,
        status: StatusCode,
        viewer: &Viewer,
        name: &str,
        context: impl Serialize,
    ) -> Result<HttpResponse, AppError> {
        let body = self.render_for(viewer, name, context)?;
        Ok(HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header(("Cache-Control", "no-store"))
            .body(body))
    }
}
