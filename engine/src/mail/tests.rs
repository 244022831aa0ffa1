use super::transport::{SendError, Transport, TransportConfig, build, file_name};
use super::*;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn letter() -> Letter {
    link_letter(
        "ada@example.com",
        "Verify your email",
        "Confirm <your> address:",
        "https://auth.example.com/verify?token=pcv_abc&x=1",
        "Ignore this if it was not you.",
    )
}

#[test]
fn a_letter_is_sealed_for_its_outbox_id() {
    let keys = DataKeys::from_config(KEY).unwrap();
    let sealed = letter().seal(&keys, &[1; 16]).unwrap();
    assert!(
        !String::from_utf8_lossy(&sealed).contains("pcv_abc"),
        "token in clear"
    );
    assert_eq!(Letter::open(&keys, &[1; 16], &sealed).unwrap(), letter());
    assert!(
        Letter::open(&keys, &[2; 16], &sealed).is_err(),
        "another message's id"
    );
    // Debug never shows the bodies (they carry tokens).
    assert!(!format!("{:?}", letter()).contains("pcv_abc"));
}

#[test]
fn link_letters_escape_html_and_keep_the_link_whole_in_text() {
    let l = letter();
    assert!(
        l.text
            .contains("https://auth.example.com/verify?token=pcv_abc&x=1")
    );
    assert!(l.html.contains("Confirm &lt;your&gt; address:"));
    assert!(
        l.html
            .contains("href=\"https://auth.example.com/verify?token=pcv_abc&amp;x=1\"")
    );
}

#[test]
fn the_message_is_multipart_alternative_with_a_stable_message_id() {
    let from: lettre::message::Mailbox = "Portcullis <no-reply@auth.example.com>".parse().unwrap();
    let m = build(&from, &[0xab; 16], &letter()).unwrap();
    let text = String::from_utf8(m.formatted()).unwrap();
    assert!(
        text.contains("Message-ID: <abababababababababababababababab@auth.example.com>"),
        "{text}"
    );
    assert!(text.contains("To: ada@example.com"));
    assert!(text.contains("Subject: Verify your email"));
    assert!(text.contains("multipart/alternative"));
    assert!(text.contains("text/plain") && text.contains("text/html"));
    let bad = Letter {
        to: "not an address".into(),
        ..letter()
    };
    assert!(matches!(
        build(&from, &[0; 16], &bad),
        Err(SendError::Permanent(_))
    ));
}

#[tokio::test]
async fn the_file_transport_writes_one_eml_per_outbox_id() {
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail");
    let t = Transport::new(&TransportConfig::File(mail.clone())).unwrap();
    let from: lettre::message::Mailbox = "no-reply@auth.example.com".parse().unwrap();
    t.send(&from, &[7; 16], &letter()).await.unwrap();
    // A retried delivery of the same message replaces it: still one file.
    t.send(&from, &[7; 16], &letter()).await.unwrap();
    let names: Vec<String> = std::fs::read_dir(&mail)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![file_name(&[7; 16])]);
    let eml = std::fs::read_to_string(mail.join(file_name(&[7; 16]))).unwrap();
    assert!(eml.contains("Subject: Verify your email"));
}

/// Sets the process umask until dropped. The umask is process-wide: other
/// tests creating files meanwhile get it too, which none of them minds.
struct Umask(nix::sys::stat::Mode);

impl Umask {
    fn set(bits: u32) -> Umask {
        use nix::sys::stat::{Mode, umask};
        Umask(umask(Mode::from_bits_truncate(bits as nix::libc::mode_t)))
    }
}

impl Drop for Umask {
    fn drop(&mut self) {
        nix::sys::stat::umask(self.0);
    }
}

/// Messages carry live reset tokens: the mail directory (and any parent it
/// creates) is 0700 and each `.eml` 0600 even when the umask would let
/// everyone read them; a mail directory an older version left open is
/// restricted when the transport starts.
#[tokio::test]
async fn the_file_transport_is_owner_only_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| {
        format!(
            "{:o}",
            std::fs::metadata(p).unwrap().permissions().mode() & 0o777
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("data").join("mail");
    let old = dir.path().join("old-mail");
    std::fs::create_dir(&old).unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
    let from: lettre::message::Mailbox = "no-reply@auth.example.com".parse().unwrap();
    {
        let _umask = Umask::set(0);
        let t = Transport::new(&TransportConfig::File(mail.clone())).unwrap();
        // A temporary file left open by a crash of an older version.
        let tmp = mail.join(format!(".{}.tmp", file_name(&[8; 16])));
        std::fs::write(&tmp, b"partial").unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
        t.send(&from, &[7; 16], &letter()).await.unwrap();
        t.send(&from, &[8; 16], &letter()).await.unwrap();
        Transport::new(&TransportConfig::File(old.clone())).unwrap();
    }
    assert_eq!(mode(&dir.path().join("data")), "700");
    assert_eq!(mode(&mail), "700");
    assert_eq!(mode(&mail.join(file_name(&[7; 16]))), "600");
    assert_eq!(mode(&mail.join(file_name(&[8; 16]))), "600");
    assert_eq!(mode(&old), "700");
}

/// A real SMTP server: `python3 -m aiosmtpd` (PyPI `aiosmtpd`) on a free
/// loopback port, storing what it receives in a Maildir; stopped by PID.
struct SmtpServer {
    child: std::process::Child,
    port: u16,
    maildir: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private CA and a certificate for `localhost` it signed (openssl CLI):
/// `(ca.pem, cert.pem, key.pem)`.
fn localhost_cert(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let p = |n: &str| dir.join(n);
    let run = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .stderr(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .status()
            .expect("openssl is installed");
        assert!(status.success(), "openssl {args:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-days",
        "1",
        "-subj",
        "/CN=Portcullis test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-subj",
        "/CN=localhost",
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
    ]);
    run(&csr);
    std::fs::write(
        p("leaf.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "leaf.ext",
        "-out",
        "cert.pem",
    ]);
    (p("ca.pem"), p("cert.pem"), p("key.pem"))
}

impl SmtpServer {
    /// `tls`: extra aiosmtpd arguments (`--tlscert` for STARTTLS, `--smtpscert` for implicit TLS).
    fn start(tls: &dyn Fn(&std::path::Path) -> Vec<std::ffi::OsString>) -> SmtpServer {
        Self::launch(&|port, dir, maildir| {
            let mut cmd = std::process::Command::new("python3");
            cmd.args(["-m", "aiosmtpd", "-n", "-l"])
                .arg(format!("127.0.0.1:{port}"))
                .args(tls(dir))
                .args(["-c", "aiosmtpd.handlers.Mailbox"])
                .arg(maildir);
            cmd
        })
    }

    /// An aiosmtpd that requires STARTTLS and then AUTH as `user`/`password`.
    fn start_with_auth(
        cert: &std::path::Path,
        key: &std::path::Path,
        user: &str,
        password: &str,
    ) -> SmtpServer {
        const SCRIPT: &str = r#"
import ssl, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword
port, maildir, cert, key, user, password = sys.argv[1:7]
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
def check(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login == user.encode() and data.password == password.encode()
    return AuthResult(success=ok, handled=False)
Controller(Mailbox(maildir), hostname="127.0.0.1", port=int(port), tls_context=ctx,
           require_starttls=True, authenticator=check, auth_required=True).start()
while True:
    time.sleep(3600)
"#;
        let (cert, key) = (cert.to_owned(), key.to_owned());
        let (user, password) = (user.to_owned(), password.to_owned());
        Self::launch(&move |port, _, maildir| {
            let mut cmd = std::process::Command::new("python3");
            cmd.args(["-c", SCRIPT])
                .arg(port.to_string())
                .arg(maildir)
                .arg(&cert)
                .arg(&key)
                .arg(&user)
                .arg(&password);
            cmd
        })
    }

    fn launch(
        command: &dyn Fn(u16, &std::path::Path, &std::path::Path) -> std::process::Command,
    ) -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("Maildir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = command(port, dir.path(), &maildir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("python3 with aiosmtpd (pip install aiosmtpd) is installed");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        SmtpServer {
            child,
            port,
            maildir,
            _dir: dir,
        }
    }

    /// Every message received so far.
    fn received(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        entries
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect()
    }
}

async fn deliver_over(
    security: transport::SmtpSecurity,
    server: &SmtpServer,
    ca: Option<std::path::PathBuf>,
) {
    let t = Transport::new(&TransportConfig::Smtp(transport::SmtpSettings {
        ca_file: ca,
        ..smtp("localhost", server.port, security)
    }))
    .unwrap();
    let from: lettre::message::Mailbox = "Portcullis <no-reply@auth.example.com>".parse().unwrap();
    t.send(&from, &[0x42; 16], &letter()).await.unwrap();
    let got = server.received();
    assert_eq!(got.len(), 1, "one message received");
    let m = &got[0];
    assert!(m.contains("To: ada@example.com"), "{m}");
    assert!(m.contains("Subject: Verify your email"));
    assert!(m.contains("Message-ID: <42424242424242424242424242424242@auth.example.com>"));
    assert!(m.contains("token=pcv_abc"), "the link arrives whole");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_delivers_to_a_real_server_with_starttls() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = localhost_cert(certs.path());
    let server = SmtpServer::start(&move |_| {
        vec![
            "--tlscert".into(),
            cert.clone().into(),
            "--tlskey".into(),
            key.clone().into(),
        ]
    });
    deliver_over(transport::SmtpSecurity::StartTls, &server, Some(ca)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_delivers_over_implicit_tls_and_refuses_an_untrusted_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = localhost_cert(certs.path());
    let server = SmtpServer::start(&move |_| {
        vec![
            "--smtpscert".into(),
            cert.clone().into(),
            "--smtpskey".into(),
            key.clone().into(),
        ]
    });
    // Without the CA the self-signed certificate is refused: nothing sent.
    let untrusted = Transport::new(&TransportConfig::Smtp(smtp(
        "localhost",
        server.port,
        transport::SmtpSecurity::Tls,
    )))
    .unwrap();
    let from: lettre::message::Mailbox = "no-reply@auth.example.com".parse().unwrap();
    let e = untrusted
        .send(&from, &[1; 16], &letter())
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::Transient(_)), "{e:?}");
    assert!(server.received().is_empty());
    deliver_over(transport::SmtpSecurity::Tls, &server, Some(ca)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_answers_are_classified_transient_or_permanent() {
    // Nobody listening: transient (retried later).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Transport::new(&TransportConfig::Smtp(transport::SmtpSettings {
        timeout: std::time::Duration::from_secs(2),
        ..smtp("127.0.0.1", port, transport::SmtpSecurity::None)
    }))
    .unwrap();
    let from: lettre::message::Mailbox = "no-reply@auth.example.com".parse().unwrap();
    assert!(matches!(
        t.send(&from, &[1; 16], &letter()).await,
        Err(SendError::Transient(_))
    ));
}

/// SMTP settings without AUTH or an extra CA, with a 5 s step timeout.
fn smtp(host: &str, port: u16, security: transport::SmtpSecurity) -> transport::SmtpSettings {
    transport::SmtpSettings {
        host: host.into(),
        port: Some(port),
        security,
        username: None,
        password: None,
        ca_file: None,
        timeout: std::time::Duration::from_secs(5),
    }
}

fn smtp_with(
    port: u16,
    ca: &std::path::Path,
    user: Option<&str>,
    password: Option<&str>,
) -> Transport {
    Transport::new(&TransportConfig::Smtp(transport::SmtpSettings {
        username: user.map(str::to_owned),
        password: password.map(|p| zeroize::Zeroizing::new(p.to_owned())),
        ca_file: Some(ca.to_owned()),
        ..smtp("localhost", port, transport::SmtpSecurity::StartTls)
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_authenticates_after_starttls_and_a_refused_login_is_permanent() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = localhost_cert(certs.path());
    let server = SmtpServer::start_with_auth(&cert, &key, "mailer", "s3cret-relay");
    let from: lettre::message::Mailbox = "no-reply@auth.example.com".parse().unwrap();

    let wrong = smtp_with(server.port, &ca, Some("mailer"), Some("not-it"));
    let e = wrong.send(&from, &[1; 16], &letter()).await.unwrap_err();
    assert!(matches!(e, SendError::Permanent(_)), "{e:?}");
    let anonymous = smtp_with(server.port, &ca, None, None);
    assert!(anonymous.send(&from, &[2; 16], &letter()).await.is_err());
    assert!(
        server.received().is_empty(),
        "nothing accepted without AUTH"
    );

    let right = smtp_with(server.port, &ca, Some("mailer"), Some("s3cret-relay"));
    right.send(&from, &[3; 16], &letter()).await.unwrap();
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert!(got[0].contains("Subject: Verify your email"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_stops_answering_cannot_hold_a_delivery() {
    // A listener that accepts and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let t = Transport::new(&TransportConfig::Smtp(transport::SmtpSettings {
        timeout: std::time::Duration::from_millis(200),
        ..smtp("127.0.0.1", port, transport::SmtpSecurity::None)
    }))
    .unwrap();
    let from: lettre::message::Mailbox = "no-reply@auth.example.com".parse().unwrap();
    let started = tokio::time::Instant::now();
    let e = t.send(&from, &[9; 16], &letter()).await.unwrap_err();
    assert!(matches!(e, SendError::Transient(_)), "{e:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}
