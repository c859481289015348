//! Where Herald's outbound requests may go (SSRF protection).
//!
//! Destination URLs are typed in by users, so without a check Herald would POST to whatever they
//! point at: the cloud metadata service, a database on loopback, a router's admin page. The
//! [`Policy`] refuses every address outside the public internet (see [`ranges`]) unless the
//! operator allows its range with `HERALD_ALLOW_NETWORKS`, and can require HTTPS.
//!
//! The check runs where it cannot be bypassed: [`GuardedResolver`] is the HTTP client's only DNS
//! resolver, so the client connects only to addresses that were resolved once, checked, and
//! allowed (no second lookup for DNS rebinding to slip into). URLs with a literal address never
//! reach a resolver, so [`Policy::check_url`] checks them before a request is made, and the API
//! refuses them when a destination is written.

pub mod ranges;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use url::{Host, Url};

/// Named in every refusal, so an operator knows how to allow a range on purpose.
pub const ALLOW_VARIABLE: &str = "HERALD_ALLOW_NETWORKS";

/// The operator's egress settings.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Ranges allowed although they are refused by default.
    pub allow: Vec<IpNet>,
    /// Refuse plain-http destinations.
    pub require_https: bool,
}

/// Why a connection may not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The address is in a refused range.
    #[error("refused {addr}{via}: {rule}; allow it with {ALLOW_VARIABLE}", via = via(.host))]
    Address {
        addr: IpAddr,
        rule: String,
        /// The host name the address came from, when it was not a literal.
        host: Option<String>,
    },
    /// `HERALD_REQUIRE_HTTPS=true` and the URL is plain http.
    #[error(
        "refused {url}: plain http is not allowed (HERALD_REQUIRE_HTTPS=true); use an https URL"
    )]
    PlainHttp { url: String },
}

fn via(host: &Option<String>) -> String {
    host.as_deref()
        .map(|h| format!(" (an address of {h})"))
        .unwrap_or_default()
}

impl Policy {
    /// Whether Herald may connect to `ip`: `Err` names the refused range.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        self.check_ip(ip).map_err(|rule| Refusal::Address {
            addr: ip,
            rule,
            host: None,
        })
    }

    fn allowed(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|net| net.contains(&ip))
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        if self.allowed(ip) {
            return Ok(());
        }
        if let IpAddr::V6(v6) = ip
            && let Some((v4, form)) = ranges::embedded_v4(v6)
        {
            // Judged by the address it carries: `::ffff:127.0.0.1` is loopback, and allowing
            // 127.0.0.0/8 allows it too.
            if self.allowed(IpAddr::V4(v4)) {
                return Ok(());
            }
            return match ranges::rule_for(IpAddr::V4(v4)) {
                Some(rule) => Err(format!("{form} form of {v4}, {}", rule.name)),
                None => Ok(()),
            };
        }
        match ranges::rule_for(ip) {
            Some(rule) => Err(format!("{} ({})", rule.name, rule.net)),
            None => Ok(()),
        }
    }

    /// The checks that need no DNS: the scheme, and a host that is a literal address (in any
    /// spelling the URL parser accepts: `0x7f.1`, `2130706433` and `[::ffff:7f00:1]` all parse
    /// to 127.0.0.1). A URL that does not parse passes: validation reports it.
    pub fn check_url(&self, raw: &str) -> Result<(), Refusal> {
        let Ok(url) = Url::parse(raw) else {
            return Ok(());
        };
        if self.require_https && url.scheme() == "http" {
            return Err(Refusal::PlainHttp {
                url: url.to_string(),
            });
        }
        let ip = match url.host() {
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
            _ => return Ok(()),
        };
        self.check(ip)
    }

    /// Keeps the allowed addresses among a name's answers, in their order. When none is allowed,
    /// the refusal names the first refused one and how many others there were.
    pub fn filter(
        &self,
        host: &str,
        answers: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Vec<SocketAddr>, Refusal> {
        let mut allowed = Vec::new();
        let mut first_refusal: Option<(IpAddr, String)> = None;
        let mut refused = 0usize;
        for addr in answers {
            match self.check_ip(addr.ip()) {
                Ok(()) => allowed.push(addr),
                Err(rule) => {
                    refused += 1;
                    first_refusal.get_or_insert((addr.ip(), rule));
                }
            }
        }
        match (allowed.is_empty(), first_refusal) {
            (false, _) => Ok(allowed),
            (true, Some((addr, rule))) => Err(Refusal::Address {
                addr,
                rule: if refused > 1 {
                    format!("{rule} (and {} more refused addresses)", refused - 1)
                } else {
                    rule
                },
                host: Some(host.to_owned()),
            }),
            // No answers at all: the resolver reports that itself.
            (true, None) => Ok(allowed),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A host name resolved to nothing at all.
#[derive(Debug, thiserror::Error)]
#[error("{0} has no address")]
struct NoAddress(String);

/// The HTTP client's DNS resolver: the system's lookup, then the policy. The client connects to
/// exactly the addresses this returns.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<Policy>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<Policy>) -> Self {
        GuardedResolver { policy }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // Port 0: the connector puts the URL's port on the addresses it is given.
            let answers: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if answers.is_empty() {
                return Err(Box::new(NoAddress(host)) as BoxError);
            }
            // Boxed as itself (not as a Box<Refusal>), so the client can downcast it.
            let allowed = policy
                .filter(&host, answers)
                .map_err(|refusal| Box::new(refusal) as BoxError)?;
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Parses `HERALD_ALLOW_NETWORKS`: comma-separated CIDRs; a bare address means just itself.
pub fn parse_networks(s: &str) -> Result<Vec<IpNet>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<IpNet>()
                .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| {
                    format!("{part:?} is not a network in CIDR notation such as 10.20.0.0/16 or fd00::/8")
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &str) -> Policy {
        Policy {
            allow: parse_networks(allow).unwrap(),
            require_https: false,
        }
    }

    fn refused(p: &Policy, url: &str) -> String {
        p.check_url(url).unwrap_err().to_string()
    }

    #[test]
    fn every_spelling_of_a_refused_literal_is_refused() {
        let p = Policy::default();
        for (url, addr, rule) in [
            ("http://127.0.0.1:9000/", "127.0.0.1", "loopback"),
            ("http://0x7f.1/", "127.0.0.1", "loopback"),
            ("http://2130706433/", "127.0.0.1", "loopback"),
            ("http://0177.0.0.1/", "127.0.0.1", "loopback"),
            ("http://127.1/", "127.0.0.1", "loopback"),
            ("http://[::1]/", "::1", "loopback"),
            (
                "http://[::ffff:127.0.0.1]/",
                "::ffff:127.0.0.1",
                "IPv4-mapped form of 127.0.0.1",
            ),
            ("http://[::ffff:7f00:1]/", "::ffff:127.0.0.1", "loopback"),
            (
                "http://169.254.169.254/latest/meta-data",
                "169.254.169.254",
                "cloud metadata",
            ),
            (
                "http://[64:ff9b::a9fe:a9fe]/",
                "64:ff9b::a9fe:a9fe",
                "NAT64 form of 169.254.169.254",
            ),
            (
                "http://[2002:a00:1::]/",
                "2002:a00:1::",
                "6to4 form of 10.0.0.1",
            ),
            ("http://10.0.0.5/", "10.0.0.5", "RFC 1918"),
            ("http://0.0.0.0/", "0.0.0.0", "unspecified"),
            ("http://[::]/", "::", "unspecified"),
            ("http://[fd12::1]/", "fd12::1", "unique local"),
            ("http://[fe80::1]/", "fe80::1", "link-local"),
            (
                "http://100.100.100.200/",
                "100.100.100.200",
                "carrier-grade NAT",
            ),
            ("https://192.168.0.1:8443/x", "192.168.0.1", "RFC 1918"),
            ("http://198.18.0.1/", "198.18.0.1", "benchmarking"),
            ("http://240.0.0.1/", "240.0.0.1", "reserved"),
            ("http://224.0.0.1/", "224.0.0.1", "multicast"),
        ] {
            let msg = refused(&p, url);
            assert!(msg.contains(addr), "{url}: {msg}");
            assert!(msg.contains(rule), "{url}: {msg}");
            assert!(msg.contains(ALLOW_VARIABLE), "{url}: {msg}");
        }
    }

    #[test]
    fn public_literals_and_names_pass_the_literal_check() {
        let p = Policy::default();
        for url in [
            "https://8.8.8.8/",
            "https://[2606:4700::1111]/",
            "https://[::ffff:8.8.8.8]/",
            "https://hooks.example.com/x",
            "http://localhost:1/",
        ] {
            assert_eq!(p.check_url(url), Ok(()), "{url}");
        }
    }

    #[test]
    fn allowed_networks_open_exactly_their_ranges() {
        let p = policy("10.20.0.0/16, 127.0.0.1");
        assert_eq!(p.check_url("http://10.20.3.4/"), Ok(()));
        assert!(p.check_url("http://10.21.0.1/").is_err());
        assert_eq!(p.check_url("http://127.0.0.1:8080/"), Ok(()));
        assert_eq!(p.check_url("http://[::ffff:127.0.0.1]/"), Ok(()));
        assert!(p.check_url("http://127.0.0.2/").is_err());
        assert!(p.check_url("http://[::1]/").is_err());
    }

    #[test]
    fn plain_http_is_refused_when_https_is_required() {
        let p = Policy {
            require_https: true,
            ..policy("127.0.0.0/8")
        };
        let msg = refused(&p, "http://127.0.0.1:1/");
        assert!(msg.contains("HERALD_REQUIRE_HTTPS"), "{msg}");
        assert_eq!(p.check_url("https://127.0.0.1:1/"), Ok(()));
    }

    #[test]
    fn refused_answers_are_skipped_and_all_refused_is_an_error() {
        let p = policy("127.0.0.1/32");
        let answers: Vec<SocketAddr> = ["[::1]:0", "127.0.0.1:0", "[fe80::1]:0"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(
            p.filter("localhost", answers.clone()).unwrap(),
            vec!["127.0.0.1:0".parse::<SocketAddr>().unwrap()]
        );
        let err = Policy::default()
            .filter("localhost", answers)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("refused ::1 (an address of localhost): loopback"),
            "{err}"
        );
        assert!(err.contains("and 2 more refused addresses"), "{err}");
    }

    #[test]
    fn networks_parse_or_name_the_bad_entry() {
        assert_eq!(policy("10.20.0.0/16,::1").allow.len(), 2);
        // A host part is dropped: 10.20.1.2/16 means 10.20.0.0/16.
        assert_eq!(policy("10.20.1.2/16").allow[0].to_string(), "10.20.0.0/16");
        let err = parse_networks("10.0.0.0/8,nope").unwrap_err();
        assert!(err.contains("\"nope\""), "{err}");
        assert!(parse_networks("").unwrap().is_empty());
    }
}
