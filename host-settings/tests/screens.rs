//! The settings app driven headless with egui_kittest against real host
//! files (a config made by `HostConfig::init`) and, for the online status,
//! a real running host (the in-process demo: relay, host, test desktop on
//! loopback). The test plays the owner: clicks, typing; oathtool (a real
//! TOTP generator) reads the key off the enrolment screen. egui_kittest
//! also fails any test whose text has no glyph in the fonts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use egui_kittest::kittest::{NodeT as _, Queryable as _};
use egui_kittest::Harness;
use host::{HostConfig, InitOptions};
use host_settings::texts::{Lang, T};
use host_settings::SettingsApp;

/// A configured host that is not running, in a folder of its own.
fn stopped_host() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let cert = rcgen::generate_simple_self_signed(vec!["relay.example".into()]).unwrap();
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let config = dir.path().join("host.toml");
    HostConfig::init(
        &config,
        InitOptions {
            id: "office-pc-7".into(),
            relay: "relay.example:443".into(),
            relay_ca: ca,
            target: None,
            proxy: None,
            enrolment_token: None,
        },
    )
    .unwrap();
    (dir, config)
}

fn app(config: &Path, lang: Lang) -> Harness<'static, SettingsApp> {
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1000.0, 760.0))
        .build_ui_state(
            |ui, app: &mut SettingsApp| app.show(ui),
            SettingsApp::new(config.to_owned(), lang),
        );
    settle(&mut harness);
    harness
}

/// Runs frames until the app's worker has answered everything (the host
/// answers on a thread of its own), at most 10 s.
fn settle(harness: &mut Harness<'static, SettingsApp>) {
    for _ in 0..500 {
        harness.run_steps(1);
        if harness.state().is_idle() {
            harness.run_steps(2);
            if harness.state().is_idle() {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the settings app kept waiting on the host");
}

fn click(harness: &mut Harness<'static, SettingsApp>, label: &str) {
    harness.get_by_label(label).click();
    harness.run_steps(2);
    settle(harness);
}

/// Clicks into the field labelled `label` and types `text`, as a person would.
fn type_into(harness: &mut Harness<'static, SettingsApp>, label: &str, text: &str) {
    harness.get_by_label(label).focus();
    harness.run_steps(2);
    harness.get_by_label(label).type_text(text);
    harness.run_steps(2);
}

/// Empties the field labelled `label` holding `len` characters, with the
/// backspace key.
fn clear(harness: &mut Harness<'static, SettingsApp>, label: &str, len: usize) {
    harness.get_by_label(label).focus();
    harness.run_steps(1);
    for _ in 0..len {
        harness.key_press(egui::Key::Backspace);
        harness.run_steps(1);
    }
}

fn page(harness: &mut Harness<'static, SettingsApp>, title: T) {
    click(harness, title.get(Lang::En));
}

#[test]
fn the_status_says_offline_when_the_host_is_stopped_and_online_when_it_runs() {
    let (_dir, config) = stopped_host();
    let harness = app(&config, Lang::En);
    harness.get_by_label("office-pc-7");
    harness.get_by_label(T::NotRunning.get(Lang::En));
    drop(harness);

    // The same in Japanese.
    let harness = app(&config, Lang::Ja);
    harness.get_by_label(T::NotRunning.get(Lang::Ja));
    drop(harness);

    // A running host (relay, host and desktop on loopback) is online.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let demo = rt.block_on(demo::Demo::start()).unwrap();
    let mut harness = app(demo.host_config(), Lang::En);
    // The host may still be registering: the status is asked anew.
    let online = (0..50).any(|_| {
        click(&mut harness, "Refresh");
        let shown = harness
            .query_by_label_contains("Online: connected to 127.0.0.1:")
            .is_some();
        std::thread::sleep(Duration::from_millis(200));
        shown
    });
    assert!(online, "the running host never showed online");
    let fingerprint = host::local::status(demo.host_config()).unwrap().fingerprint;
    harness.get_by_label(&fingerprint);
    // Its first connection shows among the recent attempts.
    rt.block_on(async {
        let mut answers = demo.scripted();
        let opened = client_core::native::open_channel(
            &demo.relay,
            &demo.id,
            &demo.pins,
            &mut answers,
            &Default::default(),
        )
        .await;
        assert!(opened.is_ok());
    });
    click(&mut harness, "Refresh");
    assert!(harness.get_all_by_label("127.0.0.1").count() >= 2);
}

#[test]
fn the_host_password_rule_is_checked_while_typing() {
    let (_dir, config) = stopped_host();
    let mut harness = app(&config, Lang::En);
    page(&mut harness, T::PageHostPassword);
    harness.get_by_label(T::PasswordNotSet.get(Lang::En));
    type_into(&mut harness, "New password", "office-pc-7");
    harness.get_by_label_contains("× Not accepted yet: that password is too easy to guess");
    assert!(
        harness.get_by_label("Save").accesskit_node().is_disabled(),
        "weak: no saving"
    );

    clear(&mut harness, "New password", "office-pc-7".len());
    type_into(&mut harness, "New password", "!Kq8#tWz-Limon");
    harness.get_by_label(T::PasswordStrong.get(Lang::En));
    type_into(&mut harness, "Again", "!Kq8#tWz-Lim");
    harness.get_by_label(T::PasswordsDiffer.get(Lang::En));
    type_into(&mut harness, "Again", "on");
    assert!(harness
        .query_by_label(T::PasswordsDiffer.get(Lang::En))
        .is_none());
    click(&mut harness, "Save");
    harness.get_by_label(T::Changed.get(Lang::En));
    harness.get_by_label(T::PasswordIsSet.get(Lang::En));
    assert!(
        host::secrets::Secrets::load(&HostConfig::secrets_path(&config))
            .unwrap()
            .password_file
            .is_some()
    );
}

#[test]
fn an_authenticator_is_switched_on_only_with_a_code_that_matches() {
    let (_dir, config) = stopped_host();
    let mut harness = app(&config, Lang::En);
    let codes_file = config.with_file_name("codes.txt");
    harness.state_mut().set_codes_path(&codes_file);
    page(&mut harness, T::PageOtp);
    harness.get_by_label(T::OtpOff.get(Lang::En));
    click(&mut harness, T::SetUpAuthenticator.get(Lang::En));
    let key = harness
        .state()
        .enrolment_key()
        .expect("a new key")
        .to_owned();
    // The key is on screen as a person types it (groups of four).
    harness.get_by_label_contains(&key[..4]);

    // A wrong code: refused, nothing switched on.
    let real = oathtool(&key);
    let wrong = if real == "000000" { "111111" } else { "000000" };
    type_into(&mut harness, "Code", wrong);
    click(&mut harness, T::TurnOn.get(Lang::En));
    harness.get_by_label(T::CodeDoesNotMatch.get(Lang::En));
    assert_eq!(host::local::status(&config).unwrap().otp, "off");

    // The code oathtool makes from the key on screen: switched on, and
    // the emergency codes are shown once, with a way to keep them.
    clear(&mut harness, "Code", 6);
    type_into(&mut harness, "Code", &oathtool(&key));
    click(&mut harness, T::TurnOn.get(Lang::En));
    harness.get_by_label(T::EmergencyTitle.get(Lang::En));
    let status = host::local::status(&config).unwrap();
    assert_eq!(status.otp, "totp");
    assert!(status.emergency_codes >= 8);
    click(&mut harness, T::SaveAs.get(Lang::En));
    harness.get_by_label_contains("Saved to ");
    let saved = std::fs::read_to_string(&codes_file).unwrap();
    assert_eq!(
        saved
            .lines()
            .filter(|l| l.len() >= 8 && !l.contains(' '))
            .count(),
        status.emergency_codes,
        "{saved}"
    );
}

#[test]
fn the_access_list_editor_refuses_a_bad_network_in_words() {
    let (_dir, config) = stopped_host();
    let mut harness = app(&config, Lang::En);
    page(&mut harness, T::PageAccess);
    type_into(&mut harness, "Network (e.g. 192.0.2.0/24)", "10.0.0.300/8");
    click(&mut harness, "Add");
    harness.get_by_label_contains("\"10.0.0.300/8\" is not a network");
    assert!(host::local::status(&config).unwrap().acl.is_empty());

    clear(&mut harness, "Network (e.g. 192.0.2.0/24)", 12);
    type_into(
        &mut harness,
        "Network (e.g. 192.0.2.0/24)",
        "203.0.113.0/24",
    );
    click(&mut harness, "Add");
    harness.get_by_label("203.0.113.0/24");
    let acl = host::local::status(&config).unwrap().acl;
    assert_eq!(acl.len(), 1);
    assert_eq!(acl[0].cidr.to_string(), "203.0.113.0/24");
}

#[test]
fn with_a_settings_password_only_the_status_shows_until_it_is_entered() {
    let (_dir, config) = stopped_host();
    host::local::set_settings_password(&config, Some("IT-only-1234")).unwrap();
    let mut harness = app(&config, Lang::En);
    harness.get_by_label("office-pc-7");
    page(&mut harness, T::PagePolicy);
    harness.get_by_label(T::Locked.get(Lang::En));
    assert!(harness
        .query_by_label(T::PolicyShare.get(Lang::En))
        .is_none());

    type_into(&mut harness, "Enter the settings password", "wrong-guess");
    click(&mut harness, "Unlock");
    harness.get_by_label_contains("the settings password is wrong");
    harness.get_by_label(T::Locked.get(Lang::En));

    clear(
        &mut harness,
        "Enter the settings password",
        "wrong-guess".len(),
    );
    type_into(&mut harness, "Enter the settings password", "IT-only-1234");
    click(&mut harness, "Unlock");
    click(&mut harness, T::PolicyShare.get(Lang::En));
    harness.get_by_label(T::Changed.get(Lang::En));
    assert!(host::local::status(&config).unwrap().share);
}

/// The current code for a base32 key from oathtool.
fn oathtool(key: &str) -> String {
    let out = Command::new("oathtool")
        .args(["--totp", "-b", key])
        .output()
        .expect("oathtool runs (apt-get install oathtool)");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn every_text_is_translated_and_drawn_by_the_bundled_font() {
    let face = ttf_parser::Face::parse(ui::fonts::UI_FONT, 0).expect("the bundled font parses");
    for t in T::ALL {
        let (en, ja) = (t.get(Lang::En), t.get(Lang::Ja));
        assert_eq!(en.matches("{}").count(), ja.matches("{}").count(), "{t:?}");
        let missing: Vec<char> = en
            .chars()
            .chain(ja.chars())
            .filter(|c| !c.is_ascii() && face.glyph_index(*c).is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "{t:?}: run `cargo xtask font`: no glyph for {missing:?}"
        );
    }
}

#[test]
fn a_fresh_install_is_walked_through_id_relay_password_and_otp() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("from-it.pem");
    let cert = rcgen::generate_simple_self_signed(vec!["relay.example".into()]).unwrap();
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let config = dir.path().join("etc/thin-host/host.toml");
    let mut harness = app(&config, Lang::En);
    harness.get_by_label_contains("(step 1 of 5)");

    // 1. The computer ID, checked before going on.
    type_into(&mut harness, "Computer ID", "Office PC!");
    click(&mut harness, "Next");
    harness.get_by_label(T::BadId.get(Lang::En));
    clear(&mut harness, "Computer ID", "Office PC!".len());
    type_into(&mut harness, "Computer ID", "office-pc-9");
    click(&mut harness, "Next");

    // 2. The relay and its CA: a bad address is refused in words, then
    // the config, keys and a copy of the CA are written.
    harness.get_by_label_contains("(step 2 of 5)");
    type_into(&mut harness, "Relay address (host:port)", "relay.example");
    type_into(&mut harness, "Relay CA file (ca.pem)", ca.to_str().unwrap());
    click(&mut harness, "Next");
    harness.get_by_label_contains("is not a relay address like relay.example.jp:443");
    assert!(!config.exists());
    type_into(&mut harness, "Relay address (host:port)", ":443");
    click(&mut harness, "Next");
    harness.get_by_label_contains("(step 3 of 5)");
    assert!(config.exists());
    assert!(config.with_file_name("relay-ca.pem").exists());

    // 3. The host password: no going on without one.
    assert!(harness.get_by_label("Next").accesskit_node().is_disabled());
    type_into(&mut harness, "New password", "!Kq8#tWz-Limon");
    type_into(&mut harness, "Again", "!Kq8#tWz-Limon");
    click(&mut harness, "Save");
    click(&mut harness, "Next");

    // 4. The authenticator, confirmed with a real code.
    harness.get_by_label_contains("(step 4 of 5)");
    click(&mut harness, T::SetUpAuthenticator.get(Lang::En));
    let key = harness.state().enrolment_key().unwrap().to_owned();
    type_into(&mut harness, "Code", &oathtool(&key));
    click(&mut harness, T::TurnOn.get(Lang::En));
    harness.get_by_label(T::EmergencyTitle.get(Lang::En));
    click(&mut harness, "Done");
    click(&mut harness, "Next");

    // 5. What the person at home types.
    harness.get_by_label_contains("(step 5 of 5)");
    harness.get_by_label("Computer ID: office-pc-9");
    harness.get_by_label("Relay: relay.example:443");
    harness.get_by_label(T::HomeOtpApp.get(Lang::En));
    click(&mut harness, "Done");
    harness.get_by_label(T::NotRunning.get(Lang::En));
    let status = host::local::status(&config).unwrap();
    assert!(status.password_set && status.totp_enrolled);
}

/// aiosmtpd (a real SMTP server) on loopback delivering into `dir/Maildir`;
/// its address and the folder new mail lands in.
fn smtp_server(dir: &Path) -> (Smtp, String, PathBuf) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let maildir = dir.join("Maildir");
    let child = Command::new("/usr/bin/python3")
        .args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(&maildir)
        .spawn()
        .expect("aiosmtpd runs (apt-get install python3-aiosmtpd)");
    let addr = format!("127.0.0.1:{port}");
    let listening = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        std::net::TcpStream::connect(&addr).is_ok()
    });
    assert!(listening, "aiosmtpd did not start");
    (Smtp(child), addr, maildir.join("new"))
}

/// The SMTP server, stopped when the test ends however it ends.
struct Smtp(std::process::Child);

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn mailed_codes_are_tried_with_a_test_mail_then_switched_on() {
    let (dir, config) = stopped_host();
    let (_smtp, addr, inbox) = smtp_server(dir.path());
    let mut harness = app(&config, Lang::En);
    page(&mut harness, T::PageOtp);
    type_into(&mut harness, "Send codes to (e-mail)", "taro@example.jp");
    // A server that is not there: refused, with the server's address.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = closed.local_addr().unwrap().to_string();
    drop(closed);
    type_into(&mut harness, "Mail server (host:port)", &nobody);
    click(&mut harness, T::TlsNone.get(Lang::En));
    click(&mut harness, "Send a test mail");
    harness.get_by_label_contains(&format!("Not changed: mail server {nobody}"));

    clear(&mut harness, "Mail server (host:port)", nobody.len());
    type_into(&mut harness, "Mail server (host:port)", &addr);
    click(&mut harness, "Send a test mail");
    harness.get_by_label_contains("A test mail was sent to taro@example.jp");
    let mail = std::fs::read_dir(&inbox)
        .unwrap()
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
        .next()
        .expect("the test mail arrived");
    assert!(mail.contains("To: taro@example.jp"), "{mail}");
    assert!(mail.contains("office-pc-7"), "{mail}");
    assert_eq!(
        host::local::status(&config).unwrap().otp,
        "off",
        "only tried"
    );

    click(&mut harness, T::TurnOnMail.get(Lang::En));
    harness.get_by_label(T::EmergencyTitle.get(Lang::En));
    assert_eq!(host::local::status(&config).unwrap().otp, "email");
}
