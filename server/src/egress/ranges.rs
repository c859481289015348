//! Which IP addresses Herald refuses to connect to by default, and why.
//!
//! The table is the IANA special-purpose registries (RFC 6890 and its updates) plus the private,
//! shared and link-local ranges, i.e. every range that does not lead to the public internet. IPv6
//! forms that carry an IPv4 address (IPv4-mapped, NAT64, 6to4) are judged by the address they
//! carry, so `::ffff:127.0.0.1` is loopback and `::ffff:8.8.8.8` is public.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// A range Herald refuses by default, with the name an operator sees in errors.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub net: IpNet,
    pub name: &'static str,
}

const fn v4(
    a: u8,
    b: u8,
    c: u8,
    d: u8,
    len: u8,
    name: &'static str,
) -> (Ipv4Addr, u8, &'static str) {
    (Ipv4Addr::new(a, b, c, d), len, name)
}

/// IPv4 ranges that are refused. Order matters only for the name: the first match is reported,
/// so the narrower, better-known names come before the ranges that contain them.
const V4: &[(Ipv4Addr, u8, &str)] = &[
    v4(255, 255, 255, 255, 32, "broadcast"),
    v4(0, 0, 0, 0, 8, "unspecified (\"this network\")"),
    v4(10, 0, 0, 0, 8, "private network (RFC 1918)"),
    v4(100, 64, 0, 0, 10, "carrier-grade NAT (RFC 6598)"),
    v4(127, 0, 0, 0, 8, "loopback"),
    v4(
        169,
        254,
        169,
        254,
        32,
        "cloud metadata service (link-local)",
    ),
    v4(169, 254, 0, 0, 16, "link-local"),
    v4(172, 16, 0, 0, 12, "private network (RFC 1918)"),
    v4(192, 0, 0, 0, 24, "IETF protocol assignments (RFC 6890)"),
    v4(192, 0, 2, 0, 24, "documentation (TEST-NET-1)"),
    v4(192, 31, 196, 0, 24, "AS112 service (RFC 7535)"),
    v4(192, 52, 193, 0, 24, "AMT relay (RFC 7450)"),
    v4(192, 88, 99, 0, 24, "6to4 relay anycast (RFC 7526)"),
    v4(192, 168, 0, 0, 16, "private network (RFC 1918)"),
    v4(
        192,
        175,
        48,
        0,
        24,
        "direct delegation AS112 service (RFC 7534)",
    ),
    v4(198, 18, 0, 0, 15, "benchmarking (RFC 2544)"),
    v4(198, 51, 100, 0, 24, "documentation (TEST-NET-2)"),
    v4(203, 0, 113, 0, 24, "documentation (TEST-NET-3)"),
    v4(224, 0, 0, 0, 4, "multicast"),
    v4(240, 0, 0, 0, 4, "reserved (240.0.0.0/4)"),
];

const fn v6(segments: [u16; 8], len: u8, name: &'static str) -> (Ipv6Addr, u8, &'static str) {
    let [a, b, c, d, e, f, g, h] = segments;
    (Ipv6Addr::new(a, b, c, d, e, f, g, h), len, name)
}

/// IPv6 ranges refused outright. The three forms that embed an IPv4 address are not here: they
/// are unwrapped first (see [`embedded_v4`]).
const V6: &[(Ipv6Addr, u8, &str)] = &[
    v6([0, 0, 0, 0, 0, 0, 0, 0], 128, "unspecified (::)"),
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128, "loopback (::1)"),
    // IPv4-compatible addresses (deprecated by RFC 4291): nothing legitimate uses them.
    v6(
        [0, 0, 0, 0, 0, 0, 0, 0],
        96,
        "IPv4-compatible IPv6 (deprecated)",
    ),
    v6(
        [0x64, 0xff9b, 1, 0, 0, 0, 0, 0],
        48,
        "local-use NAT64 (RFC 8215)",
    ),
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "discard-only (RFC 6666)"),
    v6(
        [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
        32,
        "documentation (2001:db8::/32)",
    ),
    v6(
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        23,
        "IETF protocol assignments (RFC 2928)",
    ),
    v6(
        [0x3fff, 0, 0, 0, 0, 0, 0, 0],
        20,
        "documentation (RFC 9637)",
    ),
    v6(
        [0x5f00, 0, 0, 0, 0, 0, 0, 0],
        16,
        "segment routing SIDs (RFC 9602)",
    ),
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "unique local (fc00::/7)"),
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "link-local (fe80::/10)"),
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, "site-local (deprecated)"),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast"),
];

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) or 6to4
/// (`2002:aabb:ccdd::/48`) address, with the form's name.
pub fn embedded_v4(ip: Ipv6Addr) -> Option<(Ipv4Addr, &'static str)> {
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some((tail, "IPv4-mapped")),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some((tail, "NAT64")),
        [0x2002, hi, lo, ..] => Some((
            Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8),
            "6to4",
        )),
        _ => None,
    }
}

/// Every refused range, for `rule_for` and for documentation.
pub fn rules() -> impl Iterator<Item = Rule> {
    let v4 = V4.iter().map(|&(addr, len, name)| Rule {
        net: IpNet::V4(Ipv4Net::new(addr, len).expect("valid prefix")),
        name,
    });
    let v6 = V6.iter().map(|&(addr, len, name)| Rule {
        net: IpNet::V6(Ipv6Net::new(addr, len).expect("valid prefix")),
        name,
    });
    v4.chain(v6)
}

/// The refused range `ip` falls in, or `None` when it is a public address. Embedded IPv4
/// addresses are not unwrapped here; [`super::Policy::check`] does that.
pub fn rule_for(ip: IpAddr) -> Option<Rule> {
    rules().find(|r| r.net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(ip: &str) -> Option<&'static str> {
        rule_for(ip.parse().unwrap()).map(|r| r.name)
    }

    #[test]
    fn private_and_special_ranges_are_named() {
        assert_eq!(name("127.0.0.1"), Some("loopback"));
        assert_eq!(name("127.255.255.254"), Some("loopback"));
        assert_eq!(name("10.20.30.40"), Some("private network (RFC 1918)"));
        assert_eq!(name("172.31.255.255"), Some("private network (RFC 1918)"));
        assert_eq!(name("192.168.1.1"), Some("private network (RFC 1918)"));
        assert_eq!(
            name("169.254.169.254"),
            Some("cloud metadata service (link-local)")
        );
        assert_eq!(name("169.254.1.1"), Some("link-local"));
        assert_eq!(name("100.64.0.1"), Some("carrier-grade NAT (RFC 6598)"));
        assert_eq!(name("0.0.0.0"), Some("unspecified (\"this network\")"));
        assert_eq!(name("255.255.255.255"), Some("broadcast"));
        assert_eq!(name("224.0.0.251"), Some("multicast"));
        assert_eq!(name("198.19.0.1"), Some("benchmarking (RFC 2544)"));
        assert_eq!(name("203.0.113.7"), Some("documentation (TEST-NET-3)"));
        assert_eq!(name("250.1.2.3"), Some("reserved (240.0.0.0/4)"));
        assert_eq!(name("::1"), Some("loopback (::1)"));
        assert_eq!(name("::"), Some("unspecified (::)"));
        assert_eq!(name("fd00::1"), Some("unique local (fc00::/7)"));
        assert_eq!(name("fe80::1"), Some("link-local (fe80::/10)"));
        assert_eq!(name("ff02::1"), Some("multicast"));
        assert_eq!(name("2001:db8::1"), Some("documentation (2001:db8::/32)"));
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "169.255.0.1",
            "2606:4700::1111",
            "2a00:1450::1",
        ] {
            assert_eq!(name(ip), None, "{ip}");
        }
    }

    #[test]
    fn embedded_ipv4_is_found_in_each_form() {
        let cases = [
            ("::ffff:127.0.0.1", "127.0.0.1", "IPv4-mapped"),
            ("64:ff9b::a9fe:a9fe", "169.254.169.254", "NAT64"),
            ("2002:0a00:0001::1", "10.0.0.1", "6to4"),
            ("2002:0808:0808::", "8.8.8.8", "6to4"),
        ];
        for (v6, v4, form) in cases {
            let got = embedded_v4(v6.parse().unwrap()).unwrap();
            assert_eq!(got, (v4.parse().unwrap(), form), "{v6}");
        }
        assert_eq!(embedded_v4("2606:4700::1111".parse().unwrap()), None);
    }
}
