//! Page templates (`src/web/templates/`), embedded in the binary and autoescaped.

use actix_web::HttpResponse;
use include_dir::{include_dir, Dir};
use minijinja::Environment;
use serde::Serialize;

use crate::config::Settings;
use crate::error::AppError;

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
        env.add_global("timezone", settings.timezone.name());
        env.add_global("lead_days", settings.lead_days);
        Self { env }
    }

    pub fn render(&self, name: &str, context: impl Serialize) -> Result<String, AppError> {
        Ok(self.env.get_template(name)?.render(context)?)
    }

    /// A 200 HTML response with the rendered page.
    pub fn page(&self, name: &str, context: impl Serialize) -> Result<HttpResponse, AppError> {
        let body = self.render(name, context)?;
        Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(body))
    }
}
