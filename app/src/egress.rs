//! Outbound network allowlists: which destinations a tenant's functions may connect to.
//! The provider sets one per tenant; a function may narrow it with its own. Entries are
//! `host:port`, `*.domain:port` (any name under the domain, not the domain itself),
//! `CIDR:port` or a bare address (`10.1.0.0/16:*`, `127.0.0.1:8080`, `[2001:db8::/32]:443`);
//! port `*` is any port. A name entry allows that name (resolved by the platform); an address
//! entry allows connections to addresses in it. The portal and the server read them alike.

use crate::model::FieldError;
use std::fmt;
use std::net::IpAddr;

/// Most entries one list may have.
pub const MAX_RULES: usize = 100;

/// One destination of an allowlist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub dest: Dest,
    /// `None`: any port.
    pub port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dest {
    /// One name, lower case.
    Host(String),
    /// Any name ending in `.domain` (lower case, without the leading dot).
    Under(String),
    /// Addresses in `address/prefix`.
    Net(IpAddr, u8),
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.dest {
            Dest::Host(name) => write!(f, "{name}")?,
            Dest::Under(domain) => write!(f, "*.{domain}")?,
            Dest::Net(IpAddr::V4(a), 32) => write!(f, "{a}")?,
            Dest::Net(IpAddr::V6(a), 128) => write!(f, "[{a}]")?,
            Dest::Net(IpAddr::V4(a), len) => write!(f, "{a}/{len}")?,
            Dest::Net(IpAddr::V6(a), len) => write!(f, "[{a}/{len}]")?,
        }
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => write!(f, ":*"),
        }
    }
}

impl Rule {
    /// Reads one entry; the error says what to write instead.
    pub fn parse(text: &str) -> Result<Rule, String> {
        let text = text.trim();
        let example = "write host:port, *.domain:port or CIDR:port (port * for any), e.g. api.example.com:443";
        let Some((dest, port)) = text.rsplit_once(':') else {
            return Err(format!("{text:?} has no port: {example}"));
        };
        let port = match port {
            "*" => None,
            p => match p.parse::<u16>() {
                Ok(p) if p > 0 => Some(p),
                _ => return Err(format!("{text:?}: the port {p:?} is not 1 to 65535 or *")),
            },
        };
        let dest = if dest.is_empty() {
            return Err(format!("{text:?} has no destination before the port: {example}"));
        } else if let Some(inner) = dest.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
            parse_net(inner).ok_or_else(|| format!("{text:?}: {inner:?} is not an IPv6 address or network"))?
        } else if dest.contains(':') {
            return Err(format!("{text:?}: write an IPv6 address in brackets, e.g. [2001:db8::/32]:443"));
        } else if let Some(net) = parse_net(dest) {
            net
        } else if let Some(domain) = dest.strip_prefix("*.") {
            Dest::Under(check_hostname(domain).map_err(|e| format!("{text:?}: {e}"))?)
        } else if dest.contains('*') {
            return Err(format!("{text:?}: a wildcard stands only at the start, as *.domain"));
        } else if dest.contains('/') || dest.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(format!("{text:?}: {dest:?} is not an address or network (e.g. 10.1.0.0/16)"));
        } else {
            Dest::Host(check_hostname(dest).map_err(|e| format!("{text:?}: {e}"))?)
        };
        Ok(Rule { dest, port })
    }

    fn port_allows(&self, port: u16) -> bool {
        self.port.is_none_or(|p| p == port)
    }

    /// Whether this entry allows connecting to the name `host` (lower case) on `port`.
    pub fn allows_name(&self, host: &str, port: u16) -> bool {
        self.port_allows(port) && self.dest.names(host)
    }

    /// Whether this entry allows connecting to the address `ip` on `port`.
    pub fn allows_address(&self, ip: IpAddr, port: u16) -> bool {
        self.port_allows(port) && matches!(self.dest, Dest::Net(net, len) if in_net(ip, net, len))
    }

    /// Whether everything this entry allows is allowed by `wider` too: a function's own list
    /// may only narrow its tenant's.
    pub fn within(&self, wider: &Rule) -> bool {
        let ports = wider.port.is_none() || wider.port == self.port;
        ports
            && match (&self.dest, &wider.dest) {
                (Dest::Host(name), _) => wider.dest.names(name),
                (Dest::Under(domain), Dest::Under(wide)) => domain == wide || domain.ends_with(&format!(".{wide}")),
                (Dest::Net(ip, len), Dest::Net(wide, wide_len)) => len >= wide_len && in_net(*ip, *wide, *wide_len),
                _ => false,
            }
    }
}

impl Dest {
    /// Whether this destination is the name `host`, or a domain above it.
    fn names(&self, host: &str) -> bool {
        match self {
            Dest::Host(name) => name == host,
            Dest::Under(domain) => host.strip_suffix(domain.as_str()).is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            Dest::Net(..) => false,
        }
    }
}

/// `a.b.c`, lower-cased: labels of letters, digits and inner hyphens, 63 characters each.
fn check_hostname(name: &str) -> Result<String, String> {
    let name = name.to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-') && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!("{name:?} is not a host name (letters, digits, hyphens and dots)"));
    }
    Ok(name)
}

/// `address` or `address/prefix`, the address the network's first (host bits must be zero).
fn parse_net(text: &str) -> Option<Dest> {
    let (addr, len) = match text.split_once('/') {
        Some((addr, len)) => (addr.parse::<IpAddr>().ok()?, Some(len.parse::<u8>().ok()?)),
        None => (text.parse::<IpAddr>().ok()?, None),
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(max);
    (len <= max && mask(addr, len) == addr).then_some(Dest::Net(addr, len))
}

fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let bits = u32::MAX.checked_shl(32 - u32::from(len.min(32))).unwrap_or(0);
            IpAddr::V4((u32::from(a) & bits).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::MAX.checked_shl(128 - u32::from(len.min(128))).unwrap_or(0);
            IpAddr::V6((u128::from(a) & bits).into())
        }
    }
}

fn in_net(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    // An IPv4 address written as IPv6 (::ffff:a.b.c.d) is the IPv4 address.
    let ip = match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    ip.is_ipv4() == net.is_ipv4() && mask(ip, len) == mask(net, len)
}

/// Reads a whole list, or says what is wrong at `<field>/<index>`.
pub fn parse_list(field: &str, entries: &[String]) -> Result<Vec<Rule>, Vec<FieldError>> {
    if entries.len() > MAX_RULES {
        return Err(vec![FieldError::new(field, format!("{} destinations; a list may have at most {MAX_RULES}", entries.len()))]);
    }
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        match Rule::parse(entry) {
            Ok(rule) => rules.push(rule),
            Err(e) => errors.push(FieldError::new(format!("{field}/{i}"), e)),
        }
    }
    if errors.is_empty() { Ok(rules) } else { Err(errors) }
}

/// A function's own list, each entry checked to be inside its tenant's.
pub fn check_narrowing(field: &str, own: &[Rule], tenant: &[Rule]) -> Vec<FieldError> {
    own.iter()
        .enumerate()
        .filter(|(_, rule)| !tenant.iter().any(|wide| rule.within(wide)))
        .map(|(i, rule)| {
            let why = if tenant.is_empty() {
                "the tenant allows no outbound network; the provider sets its allowlist".to_string()
            } else {
                format!("{rule} is not inside the tenant's allowlist, which a function may only narrow")
            };
            FieldError::new(format!("{field}/{i}"), why)
        })
        .collect()
}

/// The lines of a textarea as list entries (blank lines and `#` comments left out).
pub fn entries_of_text(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> Rule {
        Rule::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn entries_are_read_and_written_back_alike() {
        for text in ["api.example.com:443", "*.corp.example:443", "10.1.0.0/16:*", "127.0.0.1:8080", "[2001:db8::/32]:443", "[::1]:80"] {
            assert_eq!(rule(text).to_string(), text);
        }
        assert_eq!(rule("API.Example.COM:443").to_string(), "api.example.com:443");
    }

    #[test]
    fn bad_entries_say_what_to_write() {
        for (text, says) in [
            ("api.example.com", "has no port"),
            ("api.example.com:0", "not 1 to 65535"),
            ("api.example.com:70000", "not 1 to 65535"),
            ("api.*.com:443", "wildcard stands only at the start"),
            ("10.1.0.1/16:443", "not an address or network"),
            ("10.1.0.0/33:443", "not an address or network"),
            ("300.1.1.1:443", "not an address or network"),
            ("2001:db8::1:443", "in brackets"),
            ("exa mple.com:443", "not a host name"),
            ("-bad.com:443", "not a host name"),
            (":443", "has no destination"),
        ] {
            let e = Rule::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn names_match_exactly_or_under_a_wildcard_domain() {
        assert!(rule("api.example.com:443").allows_name("api.example.com", 443));
        assert!(!rule("api.example.com:443").allows_name("api.example.com", 80));
        assert!(!rule("api.example.com:443").allows_name("evil-api.example.com", 443));
        let under = rule("*.corp.example:*");
        assert!(under.allows_name("a.corp.example", 22));
        assert!(under.allows_name("a.b.corp.example", 443));
        assert!(!under.allows_name("corp.example", 443));
        assert!(!under.allows_name("evilcorp.example", 443));
        // A name entry never allows an address, nor an address entry a name.
        assert!(!rule("api.example.com:443").allows_address("93.184.216.34".parse().unwrap(), 443));
        assert!(!rule("127.0.0.1:80").allows_name("localhost", 80));
    }

    #[test]
    fn addresses_match_their_network() {
        let net = rule("10.1.0.0/16:*");
        assert!(net.allows_address("10.1.255.3".parse().unwrap(), 5432));
        assert!(!net.allows_address("10.2.0.1".parse().unwrap(), 5432));
        assert!(net.allows_address("::ffff:10.1.0.9".parse().unwrap(), 1), "IPv4 written as IPv6 is the same address");
        assert!(rule("[2001:db8::/32]:443").allows_address("2001:db8:1::5".parse().unwrap(), 443));
        assert!(!rule("127.0.0.1:8080").allows_address("127.0.0.2".parse().unwrap(), 8080));
    }

    #[test]
    fn a_function_may_only_narrow_its_tenants_list() {
        let tenant = [rule("*.corp.example:443"), rule("10.0.0.0/8:*"), rule("api.example.com:*")];
        let inside = ["cmdb.corp.example:443", "*.eu.corp.example:443", "10.1.0.0/16:5432", "api.example.com:443"];
        let outside = ["cmdb.corp.example:80", "*.example:443", "11.0.0.0/8:1", "0.0.0.0/0:*", "other.example.com:443"];
        for text in inside {
            assert!(check_narrowing("egress", &[rule(text)], &tenant).is_empty(), "{text} should be inside");
        }
        for text in outside {
            assert_eq!(check_narrowing("egress", &[rule(text)], &tenant).len(), 1, "{text} should be outside");
        }
        assert!(check_narrowing("egress", &[rule("a.b:1")], &[])[0].message.contains("allows no outbound network"));
    }

    #[test]
    fn a_list_reports_each_bad_entry_at_its_index() {
        let errors = parse_list("egress", &["ok.example:443".into(), "bad".into(), "x:*".into(), "1.2.3.4/40:1".into()]).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["egress/1", "egress/3"]);
        assert!(parse_list("egress", &vec!["a.b:1".to_string(); MAX_RULES + 1]).is_err());
    }
}
