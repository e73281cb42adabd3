import COpenSSL
import CTLSShim
import Config

/// The OpenSSL context for connections from the proxy to the servers of one backend group:
/// TLS 1.2+, the server's certificate verified against a CA file or the system store, its name
/// checked, SNI sent, ALPN http/1.1. Connections to one group share it, and the pool of each
/// server of the group is therefore keyed by address and these settings together.
public final class TLSClientContext: @unchecked Sendable {
    let context: OpaquePointer
    public let settings: UpstreamTLS

    /// `group` names the backend block in errors.
    public init(settings: UpstreamTLS, group: String) throws(ConfigError) {
        self.settings = settings
        func fail(_ what: String) -> ConfigError {
            ConfigError(file: "backend \(group)", line: 0, directive: "tls", message: "\(what): \(TLSError.openSSLText())")
        }
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw fail("cannot create an SSL context") }
        _ = gh_ssl_ctx_set_min_proto(ctx, TLS1_2_VERSION)
        _ = gh_ssl_ctx_set_mode(ctx, Int(SSL_MODE_RELEASE_BUFFERS) | Int(SSL_MODE_ENABLE_PARTIAL_WRITE) | Int(SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER))
        gh_ssl_ctx_set_read_ahead(ctx, 1)
        gh_ssl_ctx_set_policy_options(ctx, 1)
        let alpn: [UInt8] = [8] + Array("http/1.1".utf8)
        _ = SSL_CTX_set_alpn_protos(ctx, alpn, UInt32(alpn.count))
        if settings.verify {
            if let ca = settings.caFile {
                guard SSL_CTX_load_verify_locations(ctx, ca, nil) == 1 else { throw fail("cannot load CA file \(ca)") }
            } else {
                guard SSL_CTX_set_default_verify_paths(ctx) == 1 else { throw fail("cannot load the system CA store") }
            }
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        }
        context = ctx
    }
}
