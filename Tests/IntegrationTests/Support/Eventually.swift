import Foundation

/// Polls `body` until it is true or `seconds` pass.
func eventually(_ seconds: Double, _ body: () throws -> Bool) rethrows -> Bool {
    let end = Date().addingTimeInterval(seconds)
    repeat {
        if try body() { return true }
        usleep(20_000)
    } while Date() < end
    return try body()
}
