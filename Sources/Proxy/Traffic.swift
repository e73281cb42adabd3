/// Bytes through this process's two sides, each way: what clients sent and were sent, what
/// backends were sent and sent back (decrypted bytes where a side speaks TLS). Plain integers
/// on the loop thread, brought to the metrics at a scrape.
enum Traffic {
    nonisolated(unsafe) static var fromClients = 0
    nonisolated(unsafe) static var toClients = 0
    nonisolated(unsafe) static var fromBackends = 0
    nonisolated(unsafe) static var toBackends = 0

    @inline(__always) static func received(_ n: Int, client: Bool) {
        if client { fromClients &+= n } else { fromBackends &+= n }
    }

    @inline(__always) static func sent(_ n: Int, client: Bool) {
        if client { toClients &+= n } else { toBackends &+= n }
    }
}
