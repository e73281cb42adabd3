import Foundation
import Glibc

/// Tools a few tests call that a machine may lack (scripts/test installs them). A test that needs
/// one is `.enabled(if:)` on it, so without the tool it reports itself skipped with the reason
/// instead of failing or passing unseen.
enum Tool {
    /// promtool, from Debian's `prometheus` package.
    static let promtool = onPath("promtool")
    static let promtoolMissing = "promtool is not installed (Debian package prometheus; scripts/test installs it)"

    /// sslyze, from PyPI, importable by the python3 on PATH.
    static let sslyze = (try? sh("python3 -c 'import sslyze' 2>/dev/null").status) == 0
    static let sslyzeMissing = "sslyze is not installed for python3 (pip install sslyze; scripts/test installs it)"

    /// wrk, the HTTP load generator (Debian package wrk).
    static let wrk = onPath("wrk")
    static let wrkMissing = "wrk is not installed (Debian package wrk; scripts/test installs it)"
    /// Chromium, from Debian's `chromium` package: the status page tests load the page in it.
    static let chromium = onPath("chromium")
    static let chromiumMissing = "chromium is not installed (Debian package chromium; scripts/test installs it)"

    static func onPath(_ name: String) -> Bool {
        (try? sh("command -v \(name) >/dev/null").status) == 0
    }
}

/// Set by scripts/asan: memory budgets do not hold under AddressSanitizer (redzones, quarantine),
/// so tests report those figures but do not judge them there.
let underSanitizer = ProcessInfo.processInfo.environment["GATEHOUSE_SANITIZER"] != nil

/// The test process's open-file limit, raised once before the first child starts or the first
/// of many clients connects (children inherit it, so the proxy and backends can raise theirs as
/// far). Swift Testing has no global setup, so `Child` and `ManyClients` read this; a global `let`
/// is initialised once, whichever test gets there first.
let openFileLimit: rlim_t = raiseOpenFileLimit(wanted: 65_536)

/// Raises the soft open-file limit to the hard limit; where the hard limit is below `wanted`
/// (`ulimit -n 1024` in bash sets both), tries to raise both, which only a privileged process may.
/// Returns the soft limit in force.
func raiseOpenFileLimit(wanted: rlim_t) -> rlim_t {
    let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    var rl = rlimit()
    guard getrlimit(resource, &rl) == 0 else { return 0 }
    if rl.rlim_max < wanted {
        var higher = rlimit(rlim_cur: wanted, rlim_max: wanted)
        if setrlimit(resource, &higher) == 0 { return wanted }
    }
    if rl.rlim_cur < rl.rlim_max {
        rl.rlim_cur = rl.rlim_max
        _ = setrlimit(resource, &rl)
    }
    _ = getrlimit(resource, &rl)
    return rl.rlim_cur
}
