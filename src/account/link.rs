//! Putting another device into the account, and what the keys do then.
//!
//! [`Account::link_generate`] (a device already in the account shows a code) and
//! [`Account::link_request`] (the new device uses it) speak Charm's `api-link`
//! (`crate::cloud::link`), then make the keys follow as the Go client's `sync-keys`
//! does ([`Account::share_keys`]): every encrypt key the device holds is wrapped for
//! every SSH key of the account. Unlike the Go client nothing local is deleted: the
//! joining device's databases keep their rows (their keys stay in the key cache and
//! are shared with the account, those of its local-mode data path too), and their
//! writes are pushed at the next sync under the account's key 0. The joining device
//! records the link before its request ([`super::pending`]), so that a crash before
//! the answer or while waiting for the keys is finished by the next sync.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::files::AccountLock;
use super::keycache::{wrap_for, KeyCache};
use super::pending::{self, PendingLink};
use super::{retry_transient, Account};
use crate::cloud::link::{GeneratorEvents, LinkMessage, LinkResult};
use crate::config::Config;
use crate::crypto::keywrap;
use crate::crypto::sasquatch::Recipient;
use crate::crypto::EncryptKey;
use crate::error::{Error, Result};

/// Bounds and cancellation of a link.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    /// The longest the link may take, from connecting to the server's answer (the
    /// server itself gives a code a minute to be used, and the answer another minute).
    pub deadline: Duration,
    /// How long the joining device waits, after the server linked it, for the
    /// account's keys (the other device shares them as soon as it hears of the link).
    pub keys_wait: Duration,
    /// Set to true (from any thread) to stop waiting: the link ends with
    /// [`LinkFailure::Cancelled`]. Once the server has linked, the keys are still shared.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions {
            deadline: Duration::from_secs(150),
            keys_wait: Duration::from_secs(30),
            cancel: None,
        }
    }
}

/// The device asking to join, as the server describes it to the generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRequest {
    /// Its SSH public key (`<type> <base64>`).
    pub public_key: String,
    /// The address it connected to the server from (`ip:port`).
    pub address: String,
}

/// The generator's callbacks.
pub trait LinkPrompt: Send {
    /// The code to type on the other device: `charm-kv link CODE` or `charm link CODE`.
    fn code(&mut self, code: &str);
    /// Whether to let `request` into the account. Called at most once.
    fn confirm(&mut self, request: &LinkRequest) -> bool;
}

/// How a link that happened ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOutcome {
    /// The other device's key joined the account.
    Linked,
    /// The key was already in the account: nothing changed on the server.
    AlreadyLinked,
    /// (Requester only.) This device's key belonged to another account, which the
    /// server merged into this one: its SSH keys moved over, its server files are no
    /// longer reachable. This device's local databases are kept and go to the new
    /// account at the next sync.
    Merged {
        /// The charm id of the account this device was in before.
        previous_account: String,
    },
}

/// The result of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkReport {
    pub outcome: LinkOutcome,
    /// The account's charm id after the link.
    pub account_id: String,
    /// (Generator only.) The SSH key that joined.
    pub linked_key: Option<String>,
    /// Encrypt keys this device wrapped for the account's other SSH keys.
    pub keys_shared: usize,
}

/// One SSH key of the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedKey {
    /// `<type> <base64>`.
    pub key: String,
    /// `SHA256:<base64>`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// As the server sent it (RFC 3339).
    pub created_at: Option<String>,
    /// True for the key this device logs in with.
    pub this_device: bool,
}

/// How often the joining device asks whether the account's keys have arrived.
const KEYS_POLL: Duration = Duration::from_millis(250);

impl Account {
    /// The account's charm id (`charm id`); the first call for a new key creates the
    /// account on the server, as with the Go client.
    pub fn account_id(self: &Arc<Self>) -> Result<String> {
        self.client()?.charm_id()
    }

    /// The SSH keys of the account (`charm keys`), oldest first.
    pub fn linked_keys(self: &Arc<Self>) -> Result<Vec<LinkedKey>> {
        let client = self.client()?;
        let (keys, _) = retry_transient(|| client.account_keys())?;
        Ok(keys
            .into_iter()
            .map(|k| LinkedKey {
                fingerprint: fingerprint(&k.key).unwrap_or_default(),
                this_device: self.is_own_public_key(&k.key),
                key: k.key,
                created_at: k.created_at,
            })
            .collect())
    }

    /// Removes an SSH key from the account, named by its key text (`<type> <base64>`,
    /// a comment is ignored) or its `SHA256:` fingerprint. This device's own key is
    /// refused (unlink it from another device), as is a key the account lacks.
    pub fn unlink(self: &Arc<Self>, key: &str) -> Result<LinkedKey> {
        let wanted = key.trim();
        let keys = self.linked_keys()?;
        let found = keys
            .into_iter()
            .find(|k| {
                k.fingerprint == wanted
                    || (!k.fingerprint.is_empty()
                        && fingerprint(wanted).as_deref() == Some(&k.fingerprint))
            })
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{} is not an SSH key of this account (`keys` lists them)",
                    crate::error::quoted(wanted)
                ))
            })?;
        if found.this_device {
            return Err(Error::invalid(
                "that is this device's own key: unlink it from another device of the account",
            ));
        }
        let client = self.client()?;
        client.unlink_key(&found.key)?;
        Ok(found)
    }

    /// `sync-keys`: resolves this device's keys with the server
    /// ([`Account::sync_keys`]: cached keys the account lacks are uploaded, an account
    /// without keys gets one), then wraps every one of them for every other SSH key of
    /// the account. Key 0 keeps its `created_at`; every other key gets its own or, if
    /// that is not later, one second after key 0's: the server lists keys oldest
    /// first, so each device sees this key 0 first (a joining device's own keys may
    /// be older than the account's). The server ignores keys a public key already
    /// has. Returns how many (public key, encrypt key) pairs were sent.
    pub fn share_keys(self: &Arc<Self>) -> Result<usize> {
        let client = self.client()?;
        self.settle_pending_link(&client)?;
        self.share_keys_with(&client)
    }

    /// [`Account::share_keys`] over `client`, without settling a pending link (which
    /// calls this).
    fn share_keys_with(&self, client: &crate::cloud::CharmClient) -> Result<usize> {
        client.invalidate_auth();
        *self.resolved.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let keys = self.sync_keys_now(client)?;
        let (account_keys, _) = retry_transient(|| client.account_keys())?;
        let mut sent = 0;
        for public in account_keys
            .iter()
            .filter(|k| !self.is_own_public_key(&k.key))
        {
            let recipient = match Recipient::from_authorized_key(&public.key) {
                Ok(r) => r,
                // The server accepts only keys sasquatch can wrap for; a key it cannot
                // would not unwrap anything anyway.
                Err(_) => continue,
            };
            for key in &keys {
                let mut wrapped = keywrap::wrap(key, &recipient)?;
                wrapped.created_at = shared_created_at(key, &keys[0]);
                retry_transient(|| client.add_encrypt_key(&wrapped, &public.key))?;
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// Shows a code for another device to join this account (`charm link`): `prompt`
    /// gets the code, then the joining device's key and address to confirm. After a
    /// link, the keys are shared ([`Account::share_keys`]).
    pub fn link_generate(
        self: &Arc<Self>,
        prompt: &mut dyn LinkPrompt,
        options: &LinkOptions,
    ) -> Result<LinkReport> {
        let client = self.client()?;
        let stop = stop_flag(options);
        let mut events = Events {
            prompt,
            confirmed: false,
        };
        let (result, message) = client.link_generate(&mut events, options.deadline, &stop)?;
        let keys_shared = self.share_keys_with(&client)?;
        Ok(LinkReport {
            outcome: match result {
                LinkResult::Success => LinkOutcome::Linked,
                LinkResult::SameUser => LinkOutcome::AlreadyLinked,
            },
            account_id: client.charm_id()?,
            linked_key: Some(message.request_pub_key),
            keys_shared,
        })
    }

    /// Joins the account that showed `code` (`charm link CODE`). Then waits (at most
    /// `options.keys_wait`) for the account's keys, adopts the account's key 0 and
    /// shares this device's own keys with the account (those of its local-mode data
    /// path too: `Account::adopt_local_mode_keys`), so its local databases keep their
    /// rows and go to the account at the next sync.
    ///
    /// Crash safety (`docs/cloud-client.md`, "Crash points of a link"): before the
    /// request, the link is recorded (`pending`); the record is removed once the keys
    /// are adopted and shared, or once it is sure that nothing was linked. A record
    /// left by a crash is finished by the next [`Account::sync_keys`].
    ///
    /// `on_merge` runs before the request when this device is in an account already
    /// (the link may merge that account away), before anything local changes: the
    /// caller records that the databases must be re-homed, so that a crash from there
    /// on (even before the server's answer arrives) leaves that recorded. The caller
    /// re-homes when the outcome is [`LinkOutcome::Merged`] and forgets the record
    /// otherwise; after an error, while [`Account::link_unsettled`] is true (it could
    /// not be ruled out that the server linked), it keeps it. An error from `on_merge`
    /// ends the link before the request.
    pub fn link_request(
        self: &Arc<Self>,
        code: &str,
        options: &LinkOptions,
        on_merge: &mut dyn FnMut() -> Result<()>,
    ) -> Result<LinkReport> {
        let client = self.client()?;
        let stop = stop_flag(options);
        let before = KeyCache::read(&self.data_path)?;
        let mut record = PendingLink {
            known_keys: before.keys().iter().map(|k| k.id.clone()).collect(),
            ..PendingLink::default()
        };
        // A device that synced with this server (or whose Go client did) is in an
        // account already, whose keys are not the account it joins; asking creates
        // nothing then. A device that never did is asked nothing: that would create an
        // account. A known host key or cached keys alone say nothing: a link that
        // failed (an invalid code) leaves a host key and must change nothing, and keys
        // made offline belong to no account yet.
        let used_server =
            before.synced_key0().is_some() || self.data_path.join("kv").is_dir();
        if used_server {
            let auth = retry_transient(|| client.auth())?;
            record
                .known_keys
                .extend(auth.encrypt_keys.iter().map(|k| k.id.clone()));
            record.former_keys = auth.encrypt_keys.clone();
            record.previous_account = Some(auth.charm_id.clone());
        }
        pending::write(&self.data_path, &record)?;
        if record.previous_account.is_some() {
            if let Err(e) = on_merge() {
                pending::remove(&self.data_path)?;
                return Err(e);
            }
        }
        crate::config::crash_point("link-requesting");
        let answer = client.link_request(code, options.deadline, &stop);
        crate::config::crash_point("link-answered");
        let result = match answer {
            Ok((result, _)) => result,
            Err(e) => {
                self.settle_failed_link(&client, &record, &e);
                return Err(e);
            }
        };
        if result == LinkResult::SameUser {
            pending::remove(&self.data_path)?;
            let keys_shared = self.share_keys_with(&client)?;
            return Ok(LinkReport {
                outcome: LinkOutcome::AlreadyLinked,
                account_id: client.charm_id()?,
                linked_key: None,
                keys_shared,
            });
        }
        crate::config::crash_point("link-keys-wait");
        let (account_id, account_key0) =
            self.wait_for_account_keys(&client, &record.known_keys, options)?;
        let outcome = match &record.previous_account {
            Some(previous) if *previous != account_id => LinkOutcome::Merged {
                previous_account: previous.clone(),
            },
            _ => LinkOutcome::Linked,
        };
        let keys_shared = self.finish_link(&client, &record, &account_key0)?;
        Ok(LinkReport {
            outcome,
            account_id,
            linked_key: None,
            keys_shared,
        })
    }

    /// The local part of a link the server made: adopts the account's key 0, keeps
    /// the former account's keys and the local-mode keys, records that the local-mode
    /// databases are to join, shares every key, and removes the link record. Returns
    /// the wrappings sent.
    fn finish_link(
        &self,
        client: &crate::cloud::CharmClient,
        record: &PendingLink,
        account_key0: &str,
    ) -> Result<usize> {
        {
            // This device adopts the key 0 of the account it joined: the oldest of the
            // keys the link brought (its own keys may be older, and the server lists
            // keys oldest first). Pinned, it names the server files from now on
            // (docs/cloud-client.md, "Key 0 is pinned").
            let _lock = AccountLock::acquire(&self.data_path)?;
            let mut cache = KeyCache::read(&self.data_path)?;
            // Its former account's keys (the Go client's too) are its own keys: kept,
            // so that rows they sealed stay readable, and not taken for key 0.
            for key in &record.former_keys {
                cache.add(key.clone());
            }
            let local_mode_keys = self.add_local_mode_keys(&mut cache)?;
            cache.pin_key0(account_key0);
            cache.write(&self.data_path)?;
            if local_mode_keys.is_some() {
                // Recorded before the keys leave: the databases move at the next
                // read-write open (`Kv::open_with`), which a crash cannot skip.
                pending::mark_join_local(&self.data_path)?;
            }
        }
        *self.resolved.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let keys_shared = self.share_keys_with(client)?;
        pending::remove(&self.data_path)?;
        Ok(keys_shared)
    }

    /// After a failed link request: forgets the link record when nothing was linked
    /// for sure (the server denied it or knew no such code, or this device is still
    /// in its former account); otherwise (a cancel, a deadline, a lost connection:
    /// the server may have linked) leaves it for the next [`Account::sync_keys`].
    /// Best effort: the error of the link is what the caller reports.
    fn settle_failed_link(
        &self,
        client: &crate::cloud::CharmClient,
        record: &PendingLink,
        error: &Error,
    ) {
        let nothing_linked = match error.link_failure() {
            Some(crate::error::LinkFailure::Denied | crate::error::LinkFailure::InvalidCode) => {
                true
            }
            // Asking a device that was in an account creates nothing.
            _ if record.previous_account.is_some() => {
                matches!(self.linked_since(client, record), Ok(false))
            }
            _ => false,
        };
        if nothing_linked {
            let _ = pending::remove(&self.data_path);
        }
    }

    /// Whether a link of this device may have happened without its local part being
    /// done: a link record is left (a crash, or a failed request whose outcome is not
    /// known). The next [`Account::sync_keys`] settles it.
    pub fn link_unsettled(&self) -> Result<bool> {
        Ok(pending::read(&self.data_path)?.is_some())
    }

    /// Finishes or forgets a link a crash left recorded (`Account::settle_pending_link`),
    /// with a client of the configured server.
    /// Returns the re-homing token noted for the link
    /// ([`Account::note_link_rejoin`]) when the link turned out not to have happened.
    pub fn settle_link(self: &Arc<Self>) -> Result<Option<i64>> {
        if !self.link_unsettled()? {
            return Ok(None);
        }
        self.settle_pending_link(&self.client()?)
    }

    /// Notes in the link record (written by [`Account::link_request`] before it calls
    /// `on_merge`) the token of the re-homing `on_merge` recorded, so that a link
    /// found later not to have happened hands it back ([`Account::settle_link`]).
    pub fn note_link_rejoin(&self, token: i64) -> Result<()> {
        let Some(mut record) = pending::read(&self.data_path)? else {
            return Ok(());
        };
        record.rejoin_token = Some(token);
        pending::write(&self.data_path, &record)
    }

    /// Finishes or forgets a link a crash (or an unknown outcome) left recorded:
    /// asks the server whether this device joined another account since; if so, its
    /// keys must have arrived ([`Error::Keys`] otherwise: nothing is synced under a
    /// key 0 the account does not know) and the link's local part is done
    /// ([`Account::finish_link`]); if not, the record is removed.
    /// Returns the noted re-homing token when the link did not happen.
    pub(crate) fn settle_pending_link(
        &self,
        client: &crate::cloud::CharmClient,
    ) -> Result<Option<i64>> {
        let Some(record) = pending::read(&self.data_path)? else {
            return Ok(None);
        };
        if !self.linked_since(client, &record)? {
            pending::remove(&self.data_path)?;
            return Ok(record.rejoin_token);
        }
        client.invalidate_auth();
        let auth = retry_transient(|| client.auth())?;
        let key0 = auth
            .encrypt_keys
            .iter()
            .find(|k| !record.known_keys.contains(&k.id))
            .ok_or_else(|| {
                Error::keys(format!(
                    "this device was linked to account {} but the account's encrypt keys \
                     have not arrived; nothing was synced. Run `charm-kv sync-keys` on \
                     another device of the account, then sync here again",
                    auth.charm_id
                ))
            })?
            .id
            .clone();
        self.finish_link(client, &record, &key0)?;
        Ok(None)
    }

    /// Whether this device is in another account than when `record` was written: a
    /// different charm id, or (a device that had none then) an account with an SSH
    /// key other than its own.
    fn linked_since(
        &self,
        client: &crate::cloud::CharmClient,
        record: &PendingLink,
    ) -> Result<bool> {
        match &record.previous_account {
            Some(previous) => {
                client.invalidate_auth();
                Ok(retry_transient(|| client.auth())?.charm_id != *previous)
            }
            None => {
                let (keys, _) = retry_transient(|| client.account_keys())?;
                Ok(keys.iter().any(|k| !self.is_own_public_key(&k.key)))
            }
        }
    }

    /// The configuration of this device's local mode (no `CHARM_HOST`), when its data
    /// path is another than this one's.
    pub fn local_mode_config(&self) -> Option<Config> {
        let local = Config {
            host: None,
            local: false,
            ..self.config.clone()
        };
        match local.data_path() {
            Ok(path) if path != self.data_path => Some(local),
            _ => None,
        }
    }

    /// Adds the encrypt keys of this device's local mode (its databases written with
    /// no server were sealed with them) to `cache`, wrapped for this identity; `None`
    /// when there is no local-mode key cache, else how many were new.
    fn add_local_mode_keys(&self, cache: &mut KeyCache) -> Result<Option<usize>> {
        let Some(local) = self.local_mode_config() else {
            return Ok(None);
        };
        // Local-mode keys that cannot be read (no identity there, a damaged cache)
        // leave the local-mode databases where they are, readable in local mode as
        // before; the link goes on.
        let readable = || -> Result<Vec<EncryptKey>> {
            let local_cache = KeyCache::read(&local.data_path()?)?;
            if local_cache.keys().is_empty() {
                return Ok(Vec::new());
            }
            local_cache.unwrap(&super::SshIdentity::load_existing(&local)?)
        };
        let local_keys = readable().unwrap_or_default();
        if local_keys.is_empty() {
            return Ok(None);
        }
        let mut added = 0;
        for key in local_keys {
            if !cache.contains(key.id()) {
                cache.add(wrap_for(&self.identity, &key)?);
                added += 1;
            }
        }
        Ok(Some(added))
    }

    /// Adds the local-mode keys to the key cache (`Account::add_local_mode_keys`), under
    /// the account lock; returns how many keys were new. The link does this before it
    /// shares the keys;
    /// the local-mode databases' move calls it again, so that they open whatever a
    /// crash interrupted.
    pub fn adopt_local_mode_keys(&self) -> Result<usize> {
        if self.local_mode_config().is_none() {
            return Ok(0);
        }
        let _lock = AccountLock::acquire(&self.data_path)?;
        let mut cache = KeyCache::read(&self.data_path)?;
        let added = self.add_local_mode_keys(&mut cache)?.unwrap_or(0);
        if added > 0 {
            cache.write(&self.data_path)?;
            *self.resolved.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        Ok(added)
    }

    /// Waits until the server lists, for our key, an encrypt key not in `known` (the
    /// keys this device held before the link; the other device shares the account's
    /// keys when it hears of the link), and returns the account's charm id and the first such key in the
    /// server's order (the account's key 0).
    fn wait_for_account_keys(
        &self,
        client: &crate::cloud::CharmClient,
        known: &[String],
        options: &LinkOptions,
    ) -> Result<(String, String)> {
        let ends = Instant::now() + options.keys_wait;
        loop {
            client.invalidate_auth();
            let auth = retry_transient(|| client.auth())?;
            if let Some(key0) = auth.encrypt_keys.iter().find(|k| !known.contains(&k.id)) {
                return Ok((auth.charm_id.clone(), key0.id.clone()));
            }
            if Instant::now() >= ends {
                return Err(Error::keys(format!(
                    "linked to account {}, but its encrypt keys did not arrive within {:?}; \
                     nothing was synced. The next sync here finishes the link once they \
                     are there (`charm-kv sync-keys` on the other device sends them)",
                    auth.charm_id, options.keys_wait
                )));
            }
            std::thread::sleep(KEYS_POLL);
        }
    }
}

/// The `created_at` a key is shared with: key 0's own; any other key's own when it
/// is later than key 0's, else one second after key 0's (so that the server, which
/// orders by it, lists key 0 first for every SSH key). `None` (the server's clock)
/// when key 0 has none.
fn shared_created_at(key: &EncryptKey, key0: &EncryptKey) -> Option<String> {
    if key.id() == key0.id() {
        return key.created_at().map(str::to_owned);
    }
    let key0_at = key0.created_at().and_then(unix_seconds)?;
    match key.created_at().and_then(unix_seconds) {
        Some(at) if at > key0_at => key.created_at().map(str::to_owned),
        _ => Some(rfc3339(key0_at + 1)),
    }
}

/// Seconds since the epoch of an RFC 3339 time as the server writes it
/// (`2024-01-02T03:04:05Z`, optional fraction, `Z` or `±hh:mm`).
fn unix_seconds(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &text[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        rest = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            sign * (rest[1..3].parse::<i64>().ok()? * 3600 + rest[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    Some(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset)
}

/// `2024-01-02T03:04:05Z` for seconds since the epoch.
fn rfc3339(seconds: i64) -> String {
    let (days, secs) = (seconds.div_euclid(86400), seconds.rem_euclid(86400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The generator's event adapter: the code, then one confirmation.
struct Events<'a> {
    prompt: &'a mut dyn LinkPrompt,
    confirmed: bool,
}

impl GeneratorEvents for Events<'_> {
    fn code(&mut self, message: &LinkMessage) {
        self.prompt.code(&message.token);
    }

    fn confirm(&mut self, message: &LinkMessage) -> bool {
        if self.confirmed {
            return false;
        }
        self.confirmed = true;
        self.prompt.confirm(&LinkRequest {
            public_key: message.request_pub_key.clone(),
            address: message.request_addr.clone(),
        })
    }
}

fn stop_flag(options: &LinkOptions) -> impl Fn() -> bool + Sync {
    let cancel = options.cancel.clone();
    move || cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
}

/// `SHA256:<unpadded base64>` of an authorized key, or `None` if it does not parse.
pub fn fingerprint(key: &str) -> Option<String> {
    let key = ssh_key::PublicKey::from_openssh(key.trim()).ok()?;
    Some(key.fingerprint(ssh_key::HashAlg::Sha256).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_and_shared_keys_come_after_key_0() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("2000-03-01T00:00:00Z"), Some(951868800));
        assert_eq!(
            unix_seconds("2026-11-28T21:36:16+01:00"),
            unix_seconds("2026-11-28T20:36:16.25Z")
        );
        assert_eq!(rfc3339(951868800), "2000-03-01T00:00:00Z");
        assert_eq!(unix_seconds("yesterday"), None);
        let at = |id: &str, t: Option<&str>| {
            EncryptKey::from_text(id, EncryptKey::generate().text(), t.map(str::to_owned)).unwrap()
        };
        let key0 = at("k0", Some("2026-11-28T20:36:16Z"));
        assert_eq!(
            shared_created_at(&key0, &key0).as_deref(),
            Some("2026-11-28T20:36:16Z")
        );
        for older in [
            Some("2020-01-01T00:00:00Z"),
            Some("2026-11-28T20:36:16Z"),
            None,
        ] {
            assert_eq!(
                shared_created_at(&at("k", older), &key0).as_deref(),
                Some("2026-11-28T20:36:17Z")
            );
        }
        let later = at("k", Some("2026-12-01T00:00:00Z"));
        assert_eq!(
            shared_created_at(&later, &key0).as_deref(),
            Some("2026-12-01T00:00:00Z")
        );
    }

    #[test]
    fn fingerprints_match_ssh_keygen_format() {
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
        let fp = fingerprint(key).unwrap();
        assert!(fp.starts_with("SHA256:"), "{fp}");
        assert_eq!(fingerprint(&format!("{key} me@host")), Some(fp));
        assert_eq!(fingerprint("not a key"), None);
    }
}
