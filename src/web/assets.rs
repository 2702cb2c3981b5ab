//! Static assets (stylesheet, icon, the passkey script), embedded in the binary.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use include_dir::{include_dir, Dir};

use crate::error::AppError;

static ASSETS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/src/web/assets");

pub async fn get_asset(name: web::Path<String>) -> Result<HttpResponse, AppError> {
    let name = name.into_inner();
    let file = ASSETS.get_file(&name).ok_or(AppError::NotFound)?;
    let content_type = match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(file.contents()))
}
