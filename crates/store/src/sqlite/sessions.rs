//! The web UI's sessions on SQLite: every write goes through the writer
//! thread (one writer per file), as one op of its batch.

use super::db_err;
use crate::StoreError;
use crate::rows::{from_ns, to_ns};
use crate::sessions::{PendingSignIn, WebSession};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

pub(crate) enum SessionOp {
    Start(WebSession),
    Resume {
        key: String,
        now: Timestamp,
        idle_until: Timestamp,
    },
    End(String),
    SaveSignIn(PendingSignIn),
    TakeSignIn {
        key: String,
        now: Timestamp,
    },
}

pub(crate) enum SessionAnswer {
    Done(bool),
    Session(Option<WebSession>),
    SignIn(Option<PendingSignIn>),
}

pub(crate) fn apply(c: &Connection, op: SessionOp) -> Result<SessionAnswer, StoreError> {
    match op {
        SessionOp::Start(s) => {
            let now = to_ns(s.created_at)?;
            let (idle_until, expires_at) = (to_ns(s.idle_until)?, to_ns(s.expires_at)?);
            c.prepare_cached("DELETE FROM web_sessions WHERE idle_until <= ?1 OR expires_at <= ?1")
                .and_then(|mut st| st.execute([now]))
                .map_err(db_err)?;
            c.prepare_cached("DELETE FROM pending_sign_ins WHERE expires_at <= ?1")
                .and_then(|mut st| st.execute([now]))
                .map_err(db_err)?;
            c.prepare_cached(
                "INSERT INTO web_sessions (key, user, created_at, idle_until, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut st| st.execute(params![s.key, s.user, now, idle_until, expires_at]))
            .map_err(db_err)?;
            Ok(SessionAnswer::Done(true))
        }
        SessionOp::Resume {
            key,
            now,
            idle_until,
        } => {
            let (now, idle_until) = (to_ns(now)?, to_ns(idle_until)?);
            let row = c
                .prepare_cached(
                    "UPDATE web_sessions SET idle_until = MIN(?3, expires_at) \
                     WHERE key = ?1 AND idle_until > ?2 AND expires_at > ?2 \
                     RETURNING user, created_at, idle_until, expires_at",
                )
                .and_then(|mut st| {
                    st.query_row(params![key, now, idle_until], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)?,
                        ))
                    })
                    .optional()
                })
                .map_err(db_err)?;
            let Some((user, created, idle, expires)) = row else {
                // Ended or unknown: an ended one is of no more use to anyone.
                c.prepare_cached("DELETE FROM web_sessions WHERE key = ?1")
                    .and_then(|mut st| st.execute([&key]))
                    .map_err(db_err)?;
                return Ok(SessionAnswer::Session(None));
            };
            Ok(SessionAnswer::Session(Some(WebSession {
                key,
                user,
                created_at: from_ns(created)?,
                idle_until: from_ns(idle)?,
                expires_at: from_ns(expires)?,
            })))
        }
        SessionOp::End(key) => {
            let n = c
                .prepare_cached("DELETE FROM web_sessions WHERE key = ?1")
                .and_then(|mut st| st.execute([key]))
                .map_err(db_err)?;
            Ok(SessionAnswer::Done(n > 0))
        }
        SessionOp::SaveSignIn(p) => {
            let expires_at = to_ns(p.expires_at)?;
            c.prepare_cached(
                "INSERT INTO pending_sign_ins (key, body, expires_at) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut st| st.execute(params![p.key, p.body, expires_at]))
            .map_err(db_err)?;
            Ok(SessionAnswer::Done(true))
        }
        SessionOp::TakeSignIn { key, now } => {
            let row = c
                .prepare_cached(
                    "DELETE FROM pending_sign_ins WHERE key = ?1 RETURNING body, expires_at",
                )
                .and_then(|mut st| {
                    st.query_row([&key], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                    })
                    .optional()
                })
                .map_err(db_err)?;
            let now = to_ns(now)?;
            Ok(SessionAnswer::SignIn(
                row.filter(|(_, expires)| *expires > now)
                    .map(|(body, expires)| {
                        Ok::<_, StoreError>(PendingSignIn {
                            key,
                            body,
                            expires_at: from_ns(expires)?,
                        })
                    })
                    .transpose()?,
            ))
        }
    }
}
