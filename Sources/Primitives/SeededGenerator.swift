/// A small, fast pseudo-random generator whose whole output follows from its seed (SplitMix64).
///
/// The Raft core draws its election jitter from one of these, seeded by the shell, so that a
/// simulation replays bit-for-bit from its seed; the client draws its retry jitter from one.
public struct SeededGenerator: RandomNumberGenerator, Sendable, Hashable {
    private var state: UInt64

    /// Creates a generator; equal seeds give equal sequences.
    public init(seed: UInt64) { state = seed }

    /// Returns the next 64 pseudo-random bits.
    public mutating func next() -> UInt64 {
        state &+= Self.increment
        return Self.mix(state)
    }

    /// SplitMix64's increment, the golden ratio in 64 bits.
    public static let increment: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// SplitMix64's finalizer: a bijection on 64-bit values that spreads every input bit over
    /// the output, for hashing and ID sequences as well as for ``next()``.
    @inlinable
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Returns a value in `0..<bound`, or 0 when `bound` is 0.
    public mutating func next(below bound: UInt64) -> UInt64 {
        bound == 0 ? 0 : next() % bound
    }

    /// Returns true with probability `probability` (0 never, 1 always).
    public mutating func chance(_ probability: Double) -> Bool {
        probability > 0 && Double(next() >> 11) / Double(UInt64(1) << 53) < probability
    }
}
