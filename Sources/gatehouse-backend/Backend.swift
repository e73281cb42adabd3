import ArgumentParser
import Glibc
import HTTP1
import Runtime

/// The demo slow backend, on the same one-thread runtime as the proxy. Each answer can be shaped
/// per request with query parameters:
///   delay_ms=N   answer after N ms (default --delay-ms)
///   size=N       body of N bytes (default --body-size)
///   status=N     status code
///   chunked=1    chunked body
///   close=1      close the connection after answering (with Connection: close)
///   drop=1       close after answering, without saying so (to provoke stale keep-alive races)
///   reset=1      close without answering
///   hang=1       never answer
///   echo=1       body is the request head as received
/// Request bodies are read and counted. GET /__stats answers JSON counters.
@main
struct Backend: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gatehouse-backend", abstract: "Demo slow HTTP backend for Gatehouse.")

    @Option(help: "Address to listen on (port 0 picks a free one).") var listen = "127.0.0.1:9001"
    @Option(name: .customLong("delay-ms"), help: "Default delay before answering.") var delayMs = 0
    @Option(name: .customLong("body-size"), help: "Default response body size.") var bodySize = 13
    @Option(help: "Default status code.") var status = 200
    @Flag(help: "Chunked responses by default.") var chunked = false

    mutating func run() throws {
        raiseOpenFileLimit()
        let parts = listen.split(separator: ":")
        guard parts.count >= 2, let port = UInt16(parts.last!),
              let addr = SocketAddress.resolve(host: parts.dropLast().joined(separator: ":"), port: port) else {
            throw ValidationError("--listen: expected host:port")
        }
        let sock: Socket
        do { sock = try TCP.listen(on: addr) } catch {
            writeOut(2, "gatehouse-backend: cannot listen on \(listen): \(error)")
            throw ExitCode(1)
        }
        let bound = TCP.localAddress(of: sock) ?? addr
        writeOut(1, "gatehouse-backend listening on \(bound)")
        let server = DemoServer(listener: sock, defaults: .init(delayMs: delayMs, size: bodySize, status: status, chunked: chunked))
        let signals = SignalWatcher { _ in EventLoop.shared.stop() }
        spawnOnLoop { await server.acceptLoop() }
        EventLoop.shared.run()
        _ = signals
    }
}

func writeOut(_ fd: Int32, _ text: String) {
    let line = text + "\n"
    _ = line.utf8.withContiguousStorageIfAvailable { Glibc.write(fd, $0.baseAddress, $0.count) }
}
