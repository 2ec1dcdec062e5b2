import AsyncAlgorithms
import Synchronization

/// An asynchronous sequence fed by a producer that runs as one of the client's background
/// tasks while the sequence is iterated. The producer waits while the consumer is slow, and is
/// cancelled when the iterator is dropped.
struct BackgroundSequence<Element: Sendable>: AsyncSequence, Sendable {
    typealias Producer = @Sendable (_ send: @Sendable (Element) async -> Void) async throws -> Void

    let client: StatehouseClient
    let producer: Producer

    func makeAsyncIterator() -> Iterator {
        Iterator(feed: Feed(client: client, producer: producer))
    }

    struct Iterator: AsyncIteratorProtocol {
        let feed: Feed
        var base: AsyncThrowingChannel<Element, any Error>.AsyncIterator

        init(feed: Feed) {
            self.feed = feed
            base = feed.channel.makeAsyncIterator()
        }

        mutating func next() async throws -> Element? {
            do {
                guard let element = try await base.next() else {
                    if Task.isCancelled { throw StatehouseError(.cancelled, "the sequence was cancelled") }
                    return nil
                }
                return element
            } catch {
                throw StatehouseError.from(error)
            }
        }
    }

    final class Feed: Sendable {
        let channel = AsyncThrowingChannel<Element, any Error>()
        private let task: BackgroundTask?

        init(client: StatehouseClient, producer: @escaping Producer) {
            let channel = self.channel
            task = client.background.spawn {
                do {
                    try await producer { await channel.send($0) }
                    channel.finish()
                } catch {
                    channel.fail(error)
                }
            }
            if task == nil { channel.fail(StatehouseError(.unavailable, "the client is shut down")) }
        }

        deinit {
            task?.cancel()
            channel.finish()
        }
    }
}
