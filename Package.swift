// swift-tools-version:6.0
import PackageDescription

/// Layering: Proxy -> {HTTP1, Config, Metrics, Runtime}; HTTP1, Config and Metrics never see I/O.
let package = Package(
    name: "Gatehouse",
    products: [
        .executable(name: "gatehouse", targets: ["gatehouse"]),
        .executable(name: "gatehouse-backend", targets: ["gatehouse-backend"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
    ],
    targets: [
        // Linux headers Swift's Glibc module lacks (epoll, signalfd, timerfd, eventfd, accept4, mallinfo2).
        .target(name: "CLinux"),
        // The system OpenSSL, found through pkg-config; libssl-dev must be installed.
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        // The system libnghttp2 (HTTP/2 framing, HPACK, flow control), found through pkg-config;
        // libnghttp2-dev must be installed. Our loop drives it (mem_recv / mem_send).
        .systemLibrary(
            name: "CNghttp2",
            pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"])]
        ),
        // Functions wrapping OpenSSL macros Swift cannot import.
        .target(name: "CTLSShim", dependencies: ["COpenSSL"]),
        .target(name: "Runtime", dependencies: ["CLinux"]),
        .target(name: "HTTP1"),
        .target(name: "Config"),
        // TLS termination on the loop: contexts from the config, non-blocking streams.
        .target(name: "TLS", dependencies: ["Runtime", "Config", "COpenSSL", "CTLSShim"]),
        .target(name: "Telemetry"),
        .target(
            name: "Proxy",
            dependencies: [
                "Runtime", "HTTP1", "Config", "Telemetry", "TLS", "CLinux", "CNghttp2",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "gatehouse",
            dependencies: ["Proxy", "Config", "TLS", "Runtime", "CLinux", "CTLSShim", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            // The release proxy links the Swift runtime statically: calls into it (retain, release,
            // every executor hop) go direct instead of through the PLT, and its thread-locals need
            // no __tls_get_addr call: 5% fewer instructions per request. (swift-log brings in
            // FoundationEssentials, whose support libraries a static link must name.)
            linkerSettings: [.unsafeFlags(["-static-stdlib", "-l_FoundationCShims", "-l_FoundationCollections", "-lswiftSynchronization"], .when(configuration: .release))]
        ),
        .executableTarget(
            name: "gatehouse-backend",
            dependencies: ["Runtime", "HTTP1", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Fuzz targets (Fuzz/, run by scripts/fuzz): libFuzzer entry points when built with
        // `--sanitize=fuzzer -Xswiftc -DFUZZING`; in a plain build each is a small tool that replays
        // inputs (`swift run FuzzRequestHead Fuzz/corpus/request-head`).
        .target(name: "FuzzSupport", dependencies: ["HTTP1"], path: "Fuzz/FuzzSupport"),
        .executableTarget(name: "FuzzRequestHead", dependencies: ["FuzzSupport", "HTTP1"], path: "Fuzz/FuzzRequestHead"),
        .executableTarget(name: "FuzzResponseHead", dependencies: ["FuzzSupport", "HTTP1"], path: "Fuzz/FuzzResponseHead"),
        .executableTarget(name: "FuzzBodyFramer", dependencies: ["FuzzSupport", "HTTP1"], path: "Fuzz/FuzzBodyFramer"),
        .executableTarget(name: "FuzzHeadRewriter", dependencies: ["FuzzSupport", "HTTP1", "Proxy", "Runtime"], path: "Fuzz/FuzzHeadRewriter"),
        .executableTarget(name: "FuzzConfig", dependencies: ["FuzzSupport", "Config"], path: "Fuzz/FuzzConfig"),
        .testTarget(name: "HTTP1Tests", dependencies: ["HTTP1"]),
        .testTarget(name: "ConfigTests", dependencies: ["Config"]),
        .testTarget(name: "ProxyTests", dependencies: ["Proxy", "Runtime"]),
        .testTarget(name: "IntegrationTests", dependencies: ["gatehouse", "gatehouse-backend"], exclude: ["Support/tls_clients.py", "Support/ws_peer.py", "Support/h2_peer.py"]),
    ],
    swiftLanguageModes: [.v6]
)

// Release builds of our own hot modules skip dynamic exclusivity checks and use non-atomic
// reference counting: the proxy is one thread per process (the tests prove it), so the lock prefix
// on every retain and release buys nothing. Debug builds, which the tests run in-process on many
// threads, keep both (so run the tests in debug, as scripts/test does, never with -c release).
for target in package.targets where ["Runtime", "HTTP1", "Proxy", "TLS"].contains(target.name) {
    target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-enforce-exclusivity=unchecked", "-Xfrontend", "-assume-single-threaded"], .when(configuration: .release))]
}
