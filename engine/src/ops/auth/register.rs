//! [`Register`]: create an account and open its first session. Runs in
//! the email's partition.

use std::sync::Arc;

use portcullis_storage::{StoreError, UserRecord};

use crate::core::{Core, Engine};
use crate::domain::{Email, Password};
use crate::error::AuthError;
use crate::metrics as m;
use crate::model::{ClientInfo, TokenGrant, UserView};
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::shard::PartitionKey;
use crate::steps::signin::{issue_device_token, open_session, require_token_store};

/// Create an account and sign it in.
pub struct Register {
    /// Login email.
    pub email: Email,
    /// Password.
    pub password: Password,
    /// Display name.
    pub name: Option<String>,
    /// Caller.
    pub client: ClientInfo,
}

/// The new account, signed in.
#[derive(Debug, Clone)]
pub struct Registered {
    /// The new user.
    pub user: Arc<UserView>,
    /// Its first session.
    pub grant: TokenGrant,
}

impl Operation for Register {
    type Reply = Registered;

    fn submit(self, engine: &Engine, reply: Responder<Registered>) {
        let key = PartitionKey::Email(self.email.as_str().to_owned());
        engine.core.dispatch(key, reply, move |c| run(c, self));
    }
}

/// Runs in `Email(email)`: concurrent registrations of one address queue here,
/// so only the first hashes a password; the rest find the address taken.
async fn run(core: Arc<Core>, req: Register) -> Reply<Registered> {
    let result = register(&core, req).await;
    let label = match &result {
        Ok(_) => "ok",
        Err(AuthError::EmailTaken) => "taken",
        Err(_) => "error",
    };
    metrics::counter!(m::REGISTRATIONS_TOTAL, "result" => label).increment(1);
    result
}

async fn register(core: &Arc<Core>, req: Register) -> Reply<Registered> {
    crate::steps::limits::shared_rate_limit(core, "register", &req.client).await?;
    // The session is opened after the user is created: with the token store
    // known to be down, the account would exist while its registration
    // answers 503 (a retry then finds the email taken).
    require_token_store(core)?;
    let email = req.email.as_str();
    core.passwords.check("password", &req.password, email)?;
    let existing = core
        .user_op(
            "find_user_id_by_email",
            core.users.find_user_id_by_email(email),
        )
        .await
        .map_err(|e| AuthError::from_store("find_user_id_by_email", e))?;
    if existing.is_some() {
        return Err(AuthError::EmailTaken);
    }
    // The pool place is taken here, not at admission: registrations of one
    // address queue in its partition, and only the first hashes.
    let password_hash = core.hash.hash(req.password.into_secret()).await?;
    let now = core.now_ms();
    let user = UserRecord {
        id: crate::steps::record::new_user_id(now),
        email: email.to_owned(),
        password_hash,
        name: req.name,
        picture_url: None,
        email_verified: false,
        mfa_enabled: false,
        created_at_ms: now,
        updated_at_ms: now,
        version: 1,
        account: Default::default(),
    };
    match core
        .user_op("create_user", core.users.create_user(&user))
        .await
    {
        Ok(()) => {}
        // Another pod won the race between our check and our insert.
        Err(StoreError::EmailTaken) => return Err(AuthError::EmailTaken),
        Err(e) => return Err(AuthError::from_store("create_user", e)),
    }
    tracing::info!(user_id = %user.id, "user registered");
    let view = core.read.put_user(&user);
    let mut grant = open_session(core, user.id, &req.client, &["pwd"], None).await?;
    // The account's first device: its later logins are judged on their own.
    grant.device_token = Some(issue_device_token(
        core,
        user.id,
        user.account.device_epoch,
        None,
    )?);
    Ok(Registered { user: view, grant })
}
