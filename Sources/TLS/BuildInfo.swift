import CTLSShim

/// What this build is: its version and the OpenSSL it runs with (`--version`, `gatehouse_build_info`).
public enum BuildInfo {
    public static let version = "0.1.0"
    /// The OpenSSL library linked at run time (OpenSSL_version), e.g. "OpenSSL 3.0.17 1 Jul 2025".
    public static var openSSL: String { String(cString: gh_openssl_version()) }
}
