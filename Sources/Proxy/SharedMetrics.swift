import Runtime
import Telemetry

/// A worker's part in the metrics its supervisor's workers share (`SharedSlots`): its own slot,
/// what its predecessors in that slot counted, and the reading of every slot for a scrape.
///
/// Workers of one generation publish the same series; after a reload the new generation may
/// publish others (a server added or removed) while the old one drains. Every slot carries the
/// names of its values, so vectors are added up series by series: a series the reader's config
/// does not have is left out, one another worker lacks counts nothing there (NaN).
final class SharedMetrics {
    let slots: SharedSlots
    let slot: Int
    /// Worker slots in the file (the supervisor's own comes after them).
    let workerSlots: Int
    private let count: Int
    private let layout: UInt64
    private let names: [UInt8]
    private let index: [String: Int]
    /// What this slot's earlier workers counted, added to every counter and histogram entry so
    /// no total goes down when a worker is replaced.
    private var base: [Double] = []
    private let outgoing: UnsafeMutablePointer<Double>
    /// Where each value of a foreign layout goes in ours (-1: nowhere), by layout.
    private var maps: [UInt64: [Int]] = [:]
    private let raw: UnsafeMutablePointer<Double>
    private var lastGood: [UnsafeMutablePointer<Double>?]
    private var lastAlive: [Bool]
    private var scratch: UnsafeMutablePointer<Double>?
    private var publishedNames = false

    /// Joins the file as the worker of `slot`, taking over what its predecessor counted.
    init(slots: SharedSlots, slot: Int, workerSlots: Int, registry: MetricsRegistry) {
        self.slots = slots
        self.slot = slot
        self.workerSlots = workerSlots
        count = registry.valueCount
        layout = registry.layoutHash
        let keys = registry.keys
        names = Array(keys.joined(separator: "\n").utf8)
        index = Dictionary(keys.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        outgoing = .allocate(capacity: max(count, 1))
        raw = .allocate(capacity: SharedSlots.capacity)
        lastGood = Array(repeating: nil, count: workerSlots)
        lastAlive = Array(repeating: false, count: workerSlots)
        base = predecessors(registry.monotonic)
    }

    /// What this slot's earlier workers counted, by our series (zero where a gauge or unknown).
    private func predecessors(_ monotonic: [Bool]) -> [Double] {
        var base = [Double](repeating: 0, count: count)
        base.withUnsafeMutableBufferPointer { b in
            guard read(slot, into: b.baseAddress!) != nil else { return }
            for i in 0..<count where !monotonic[i] || b[i].isNaN { b[i] = 0 }
        }
        return base
    }

    /// Writes `registry`'s values plus the predecessors' to this worker's slot.
    func publish(_ registry: MetricsRegistry) {
        registry.snapshot(into: outgoing)
        for i in 0..<count { outgoing[i] += base[i] }
        slots.publish(slot: slot, values: outgoing, count: count, layout: layout, names: publishedNames ? nil : names)
        publishedNames = true
    }

    /// Every worker slot's last good vector, in this worker's order. A slot that cannot be read
    /// now (a writer inside) gives its previous copy, so totals never dip.
    func readAll() -> [MetricsRegistry.Slot] {
        var out: [MetricsRegistry.Slot] = []
        for i in 0..<workerSlots {
            // Into a spare buffer: a read that fails may have copied half an update.
            let spare = scratch ?? .allocate(capacity: max(count, 1))
            if let alive = read(i, into: spare) {
                scratch = lastGood[i]
                lastGood[i] = spare
                lastAlive[i] = alive
            } else {
                scratch = spare
            }
            guard let good = lastGood[i] else { continue }
            out.append(.init(index: i, values: UnsafePointer(good), alive: lastAlive[i]))
        }
        return out
    }

    /// `slot`'s values in this worker's order, and whether its worker is alive.
    private func read(_ slot: Int, into: UnsafeMutablePointer<Double>) -> Bool? {
        guard let found = slots.read(slot: slot, into: raw, room: SharedSlots.capacity) else { return nil }
        if found.layout == layout && found.count == count {
            into.update(from: raw, count: count)
            return found.alive
        }
        guard let map = map(for: found.layout, slot: slot), map.count == found.count else { return nil }
        into.update(repeating: .nan, count: count)
        for (j, to) in map.enumerated() where to >= 0 { into[to] = raw[j] }
        return found.alive
    }

    private func map(for layout: UInt64, slot: Int) -> [Int]? {
        if let m = maps[layout] { return m }
        guard let text = slots.names(slot: slot, layout: layout) else { return nil }
        let m = text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { index[String(decoding: $0, as: UTF8.self)] ?? -1 }
        maps[layout] = m
        return m
    }
}
