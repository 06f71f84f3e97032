//! Mailing a one-time code (lettre over SMTP). The mail says, in Japanese and
//! English, when and from which address the attempt came, so an owner
//! notices an attempt they did not make.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::SinglePart;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use time::macros::format_description;
use time::OffsetDateTime;

const SEND_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain SMTP (only for a mail server on the same machine or network).
    None,
    /// SMTP upgraded with STARTTLS (usually port 587).
    Starttls,
    /// SMTP inside TLS from the start (usually port 465).
    Tls,
}

/// Where codes are mailed and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    pub to: String,
    /// Mail server, host:port.
    pub smtp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_user: Option<String>,
    /// File holding the SMTP password (kept out of the config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_password_file: Option<std::path::PathBuf>,
    pub smtp_tls: SmtpTls,
    pub from: String,
}

impl EmailSettings {
    /// Checks addresses and the server address before they are saved.
    pub fn validate(&self) -> Result<(), String> {
        self.to
            .parse::<lettre::Address>()
            .map_err(|_| format!("{:?} is not an e-mail address", self.to))?;
        self.from
            .parse::<lettre::message::Mailbox>()
            .map_err(|_| format!("{:?} is not an e-mail address", self.from))?;
        split_host_port(&self.smtp)?;
        if self.smtp_user.is_some() != self.smtp_password_file.is_some() {
            return Err("give both --smtp-user and --smtp-password-file, or neither".into());
        }
        Ok(())
    }
}

fn split_host_port(addr: &str) -> Result<(String, u16), String> {
    let bad = || format!("{addr:?} is not a mail server address like mail.example.jp:587");
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse::<u16>().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

fn utc(at: SystemTime) -> String {
    OffsetDateTime::from(at)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
        ))
        .unwrap_or_default()
}

/// Subject and body of the code mail.
pub fn compose(
    id: &str,
    code: &str,
    source: IpAddr,
    at: SystemTime,
    expires: SystemTime,
) -> (String, String) {
    let subject = format!("リモート接続の確認コード / Access code for {id}");
    let (at, until) = (utc(at), utc(expires));
    let body = format!(
        "{id} へのリモート接続の確認コード: {code}\r\n\
         有効期限: 5 分 ({until} まで)\r\n\
         接続元: {source} ({at})\r\n\
         心当たりがない場合は、このコードを誰にも教えず、管理者に連絡してください。\r\n\
         \r\n\
         Code for remote access to {id}: {code}\r\n\
         Valid for 5 minutes (until {until}).\r\n\
         Attempt from {source} at {at}.\r\n\
         If you did not try to connect, do not give this code to anyone and tell your administrator.\r\n"
    );
    (subject, body)
}

/// Subject and body of the mail the settings app sends to try the
/// settings before codes are switched on.
pub fn compose_test(id: &str) -> (String, String) {
    let subject = format!("テストメール / Test mail from {id}");
    let body = format!(
        "{id} の設定アプリからのテストメールです。接続時の確認コードはこのアドレスに届きます。\r\n\
         \r\n\
         This is a test mail from the settings app of {id}. Access codes will arrive at this \
         address.\r\n"
    );
    (subject, body)
}

/// Sends the code mail; the error says what to fix in words for the log.
pub async fn send(
    settings: &EmailSettings,
    smtp_password: Option<&str>,
    subject: String,
    body: String,
) -> Result<(), String> {
    let message = Message::builder()
        .from(
            settings
                .from
                .parse()
                .map_err(|e| format!("sender address: {e}"))?,
        )
        .to(settings
            .to
            .parse()
            .map_err(|e| format!("recipient address: {e}"))?)
        .subject(subject)
        .singlepart(
            // Quoted-printable keeps the ASCII part (and the code) readable
            // in any mail viewer.
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .header(ContentTransferEncoding::QuotedPrintable)
                .body(body),
        )
        .map_err(|e| format!("cannot build the mail: {e}"))?;
    let (host, port) = split_host_port(&settings.smtp)?;
    let builder = match settings.smtp_tls {
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str()),
        SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)
            .map_err(|e| format!("mail server {host}: {e}"))?,
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&host)
            .map_err(|e| format!("mail server {host}: {e}"))?,
    };
    let mut builder = builder.port(port).timeout(Some(SEND_TIMEOUT));
    if let (Some(user), Some(password)) = (&settings.smtp_user, smtp_password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.to_owned()));
    }
    builder
        .build()
        .send(message)
        .await
        .map(drop)
        .map_err(|e| format!("mail server {}: {e}", settings.smtp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mail_names_time_and_source_in_both_languages() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let (subject, body) = compose(
            "office-pc",
            "123456",
            "192.0.2.7".parse().unwrap(),
            at,
            at + Duration::from_secs(300),
        );
        assert!(subject.contains("office-pc"));
        assert!(body.contains("確認コード: 123456"));
        assert!(body.contains("Code for remote access to office-pc: 123456"));
        assert!(body.contains("接続元: 192.0.2.7 (2027-01-15 08:00:00 UTC)"));
        assert!(body.contains("until 2027-01-15 08:05:00 UTC"));
    }

    #[test]
    fn settings_are_checked() {
        let mut s = EmailSettings {
            to: "taro@example.jp".into(),
            smtp: "mail.example.jp:587".into(),
            smtp_user: None,
            smtp_password_file: None,
            smtp_tls: SmtpTls::Starttls,
            from: "thin-host <noreply@example.jp>".into(),
        };
        assert_eq!(s.validate(), Ok(()));
        s.smtp = "mail.example.jp".into();
        assert!(s.validate().is_err());
        s.smtp = "mail.example.jp:587".into();
        s.to = "not an address".into();
        assert!(s.validate().is_err());
        s.to = "taro@example.jp".into();
        s.smtp_user = Some("taro".into());
        assert!(s.validate().unwrap_err().contains("both"));
    }
}
