//! Turning a finished connection into its [`Record`].

use crate::flow::{FlowKey, Side};
use crate::record::{
    alert_name, rfc3339, AlertRecord, CaptureRef, ClientEndpoint, ClientHelloRecord, Endpoint,
    ImapClient, Outcome, Record, Sender, ServerHelloRecord, SmtpClient, SOURCE_WIRE,
};

use crate::proto::starttls::Reply;

use crate::tls::fingerprint::Transport;

use super::connection::{Body, Connection, Handshake, Phase};
use super::Services;

/// Which side is the client: the SYN's sender; else the ClientHello's sender (or the
/// ServerHello's receiver); else the other side of a mail port; else the side on the higher
/// (ephemeral) port.
fn client_side(key: &FlowKey, conn: &Connection, body: &Body) -> Side {
    if let Some(side) = conn.client {
        return side;
    }
    if let Some((side, is_client_hello)) = body.shared.handshake.hello_sender {
        return if is_client_hello { side } else { side.other() };
    }
    if let Some(mail) = &body.shared.mail {
        return mail.server.other();
    }
    if key.lo.1 > key.hi.1 {
        Side::Lo
    } else {
        Side::Hi
    }
}

/// Build the record of a connection, if it carried a hello, is a mail session, or sat on a
/// forced TLS port.
pub(super) fn report(
    key: &FlowKey,
    conn: Connection,
    files: &[String],
    services: &Services,
    end_of_input: bool,
) -> Option<Record> {
    if conn.phase != Phase::Open || (conn.body.is_none() && !conn.forced_port) {
        return None;
    }
    // The connection is done with: its hellos and certificate move into the record.
    let mut conn = conn;
    let mut body = conn.body.take().unwrap_or_default();
    let hs = &body.shared.handshake;
    let started_tls = body.halves.iter().any(|h| h.upper.tls.started_tls());
    let mail_dialogue = body
        .shared
        .mail
        .as_deref()
        .filter(|m| m.dialogue.protocol_confirmed());
    if !hs.hello_seen() && !started_tls && !conn.forced_port && mail_dialogue.is_none() {
        return None;
    }
    let client = client_side(key, &conn, &body);
    let server = client.other();
    let (client_ip, client_port) = key.endpoint(client);
    let (server_ip, server_port) = key.endpoint(server);

    let client_half = &body.halves[client.index()];
    let server_half = &body.halves[server.index()];
    let client_hello = hs.client_hello.as_ref();
    let server_hello = hs.server_hello.as_ref();
    let final_server_hello = server_hello.filter(|(h, _)| !h.hrr);

    let outcome = if hs.fatal_alert() || (!hs.alerts.is_empty() && final_server_hello.is_none()) {
        Outcome::Alert
    } else if final_server_hello.is_some() {
        Outcome::Negotiated
    } else if !hs.hello_seen() && !started_tls && mail_dialogue.is_some() {
        Outcome::Plaintext
    } else if client_hello.is_none()
        || server_half.upper.tls.mid_message()
        || server_half.lost_bytes
        || (client_half.lost_bytes && client_hello.is_none())
        || (end_of_input && !conn.closed())
    {
        Outcome::Incomplete
    } else {
        Outcome::NoServerHello
    };

    let hs = &mut body.shared.handshake;
    let parts = hello_parts(
        hs,
        client,
        files,
        (conn.file as usize, conn.first_ts),
        Transport::Tcp,
    );
    Some(Record {
        client: ClientEndpoint {
            ip: client_ip,
            port: client_port,
            proxied: body.shared.proxied.map(|(ip, port)| Endpoint { ip, port }),
        },
        server: Endpoint {
            ip: server_ip,
            port: server_port,
        },
        transport: "tcp",
        service: services.name(server_port),
        starttls: mail_dialogue
            .and_then(|m| m.dialogue.requested())
            .map(|v| v.as_str()),
        starttls_offered: mail_dialogue.map(|m| m.dialogue.offered().is_some()),
        starttls_reply: mail_dialogue
            .and_then(|m| m.dialogue.reply())
            .map(|reply| match reply {
                Reply::Accepted => "accepted".to_string(),
                Reply::Refused { code } => code.as_str().to_string(),
            }),
        client_hello: parts.client_hello,
        server_hello: parts.server_hello,
        outcome,
        alerts: parts.alerts,
        encrypted_alerts: hs.encrypted_alerts,
        handshake_us: parts.handshake_us,
        client_hellos: hs.client_hellos,
        certificate: hs
            .certificate
            .take()
            .map(|chain| *chain)
            .or_else(|| server_half.upper.tls.unfinished_certificate()),
        capture: parts.capture,
        ts: parts.ts,
        smtp: mail_dialogue
            .and_then(|m| m.dialogue.helo())
            .map(|helo| SmtpClient { helo: helo.into() }),
        imap: mail_dialogue
            .and_then(|m| m.dialogue.imap_id())
            .map(|id| ImapClient { id: id.into() }),
        source: SOURCE_WIRE,
        log: None,
    })
}

/// What a handshake gives a record, whatever carried it (TCP or QUIC).
pub(super) struct HelloParts {
    pub ts: String,
    pub client_hello: Option<ClientHelloRecord>,
    pub server_hello: Option<ServerHelloRecord>,
    pub alerts: Vec<AlertRecord>,
    pub handshake_us: Option<u64>,
    pub capture: CaptureRef,
}

/// The record fields that come from the hellos and alerts, the hellos taken from `hs`.
/// `fallback` is the file and time of the connection's first packet, for a connection
/// without a hello.
pub(super) fn hello_parts(
    hs: &mut Handshake,
    client: Side,
    files: &[String],
    fallback: (usize, i64),
    transport: Transport,
) -> HelloParts {
    let client_hello = hs.client_hello.as_ref();
    let final_server_hello = hs.server_hello.as_ref().filter(|(h, _)| !h.hrr);
    let (file, frame, first_ts) = hs.first_hello.unwrap_or((fallback.0, 0, fallback.1));
    let ts = client_hello.map_or(first_ts, |(_, ts, _)| *ts);
    let alerts = hs
        .alerts
        .iter()
        .map(|&(side, level, description)| AlertRecord {
            from: if side == client {
                Sender::Client
            } else {
                Sender::Server
            },
            level,
            description,
            description_name: alert_name(description),
        })
        .collect();
    let handshake_us = match (client_hello, final_server_hello) {
        (Some((_, ch_ts, _)), Some((_, sh_ts))) if sh_ts >= ch_ts => {
            Some(((sh_ts - ch_ts) / 1000) as u64)
        }
        _ => None,
    };
    let hrr = hs.hrr;
    HelloParts {
        ts: rfc3339(ts),
        client_hello: hs
            .client_hello
            .take()
            .map(|(h, _, _)| ClientHelloRecord::from_hello(*h, transport)),
        server_hello: hs
            .server_hello
            .take()
            .map(|(h, _)| ServerHelloRecord::from_hello(*h, hrr, transport)),
        alerts,
        handshake_us,
        capture: CaptureRef {
            file: files.get(file).cloned().unwrap_or_default(),
            frame,
        },
    }
}
