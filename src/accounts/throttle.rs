//! Sign-in lockout: after `threshold` failures within `window` for one email address, that
//! address is locked for `window`. The key is a hash of the address as typed, so the same
//! happens whether or not an account exists, and no typed text is stored.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use crate::db::schema::login_throttle;
use crate::db::{DbConnection, DbError};

pub fn email_key(email: &str) -> String {
    hex::encode(Sha256::digest(email.trim().to_lowercase().as_bytes()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    Locked { until: NaiveDateTime },
}

type Row = (i32, NaiveDateTime, Option<NaiveDateTime>);

fn load(conn: &mut DbConnection, key: &str) -> Result<Option<Row>, DbError> {
    Ok(login_throttle::table
        .filter(login_throttle::email_key.eq(key))
        .select((
            login_throttle::failures,
            login_throttle::window_started_at,
            login_throttle::locked_until,
        ))
        .first(conn)
        .optional()?)
}

pub fn check(conn: &mut DbConnection, key: &str, now: NaiveDateTime) -> Result<Gate, DbError> {
    Ok(match load(conn, key)? {
        Some((_, _, Some(until))) if until > now => Gate::Locked { until },
        _ => Gate::Open,
    })
}

/// Counts a failure; returns whether the address is now locked.
pub fn record_failure(
    conn: &mut DbConnection,
    key: &str,
    threshold: u32,
    window: std::time::Duration,
    now: NaiveDateTime,
) -> Result<Gate, DbError> {
    crate::db::lock_for_transaction(conn, &format!("login-throttle:{key}"))?;
    let window_std = window;
    let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::minutes(15));
    let (failures, started) = match load(conn, key)? {
        Some((n, started, _)) if now - started < window => (n + 1, started),
        _ => (1, now),
    };
    let locked_until =
        (failures >= i32::try_from(threshold).unwrap_or(i32::MAX)).then_some(now + window);
    let updated = diesel::update(login_throttle::table.filter(login_throttle::email_key.eq(key)))
        .set((
            login_throttle::failures.eq(failures),
            login_throttle::window_started_at.eq(started),
            login_throttle::locked_until.eq(locked_until),
        ))
        .execute(conn)?;
    if updated == 0 {
        // In a savepoint: a concurrent first failure may have inserted the row meanwhile, and
        // then counting again as an update is the right outcome.
        let inserted = conn.transaction(|conn| {
            diesel::insert_into(login_throttle::table)
                .values((
                    login_throttle::email_key.eq(key),
                    login_throttle::failures.eq(failures),
                    login_throttle::window_started_at.eq(started),
                    login_throttle::locked_until.eq(locked_until),
                ))
                .execute(conn)
        });
        match inserted {
            Ok(_) => {}
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => {
                return record_failure(conn, key, threshold, window_std, now);
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(match locked_until {
        Some(until) => Gate::Locked { until },
        None => Gate::Open,
    })
}

pub fn clear(conn: &mut DbConnection, key: &str) -> Result<(), DbError> {
    diesel::delete(login_throttle::table.filter(login_throttle::email_key.eq(key)))
        .execute(conn)?;
    Ok(())
}
