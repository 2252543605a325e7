//! `admin create`: support-staff logins are made from the command line only.

use std::io::BufRead;

use anyhow::Context;

use crate::{
    config::Config,
    crypto,
    db::{Db, WriteError, support},
    domain::user::{Email, check_name, check_new_password},
};

/// Creates a support-staff login; the password comes from `password` or the first stdin line.
pub async fn create(config: &Config, email: &str, name: &str, password: Option<String>) -> anyhow::Result<()> {
    let email = Email::parse(email).map_err(anyhow::Error::msg)?;
    let name = check_name(name, "名前を入力してください").map_err(anyhow::Error::msg)?;
    let password = match password {
        Some(p) => p,
        None => {
            eprintln!("Password for {} (one line):", email.as_str());
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).context("reading the password")?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    check_new_password(&password).map_err(anyhow::Error::msg)?;
    let db = Db::connect(config.database_url.as_ref().map(|u| u.expose()), &config.data_dir).await?;
    db.migrate().await?;
    // Support logins are their own namespace: a merchant account may use the same email (sign-up
    // must not reveal support emails), and sign-in tells the two apart by the password.
    let hash = crypto::hash_password_blocking(password).await?;
    match support::create(&db, email.as_str(), &name, &hash).await {
        Ok(id) => println!("created support staff #{id} <{}>", email.as_str()),
        Err(WriteError::Duplicate) => anyhow::bail!("{} is already a support staff login", email.as_str()),
        Err(e) => return Err(e.into()),
    }
    db.close().await;
    Ok(())
}
