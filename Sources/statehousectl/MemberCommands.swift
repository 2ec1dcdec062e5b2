import ArgumentParser
import Foundation
import StatehouseClient

/// `member`: lists and changes the cluster's members.
struct MemberCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "member",
        abstract: "Lists and changes the cluster's members.",
        discussion: "Member IDs are printed and taken in hexadecimal, as etcdctl does.",
        subcommands: [List.self, Add.self, Remove.self, Promote.self, Update.self])

    /// `member list`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Lists the members.",
            discussion: """
                Prints one line per member: ID, STATUS (started, or unstarted for an added member that \
                has not run yet), NAME, PEER ADDRS, CLIENT ADDRS, IS LEARNER, separated by ", " (as \
                etcdctl); -w table prints those columns; -w json {"members": [{"id", "name", \
                "peer_urls", "client_urls", "is_learner"}]}.
                """)

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let members = try await global.withClient { try await $0.members() }
            MembersOutput(members: members).print(as: global.writeOut)
        }
    }

    /// `member add`.
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Adds a member (start it afterwards with the settings printed).",
            discussion: """
                Prints "Member <ID> added to cluster <cluster ID>", then the environment the new member \
                starts with: STATEHOUSE_NAME, STATEHOUSE_INITIAL_CLUSTER, \
                STATEHOUSE_INITIAL_ADVERTISE_PEER_URLS and STATEHOUSE_INITIAL_CLUSTER_STATE="existing".
                """)

        @Argument(help: "The new member's name (--name when it starts).")
        var name: String

        @Option(help: "The new member's peer URLs, comma-separated.")
        var peerUrls: String

        @Flag(help: "Add it as a non-voting learner (promote it once it has caught up).")
        var learner = false

        @OptionGroup var global: GlobalOptions

        mutating func validate() throws {
            if urls(peerUrls).isEmpty { throw ValidationError("--peer-urls is empty") }
        }

        func run() async throws {
            let change = try await global.withClient { try await $0.addMember(peerURLs: urls(peerUrls), isLearner: learner) }
            guard let added = change.member else { throw CommandFailure("the server did not return the added member") }
            if global.writeOut == .json {
                return emit([
                    JSONValue.object([
                        ("header", change.header.json), ("member", MembersOutput.json(added)),
                        ("members", .array(change.members.map(MembersOutput.json))),
                    ]).rendered
                ])
            }
            let initialCluster = change.members.flatMap { member -> [String] in
                let memberName = member.id == added.id ? name : member.name
                return memberName.isEmpty ? [] : member.peerURLs.map { "\(memberName)=\($0)" }
            }
            emit([
                "Member \(added.idString) added to cluster \(hex(change.header.clusterID))", "",
                "STATEHOUSE_NAME=\"\(name)\"",
                "STATEHOUSE_INITIAL_CLUSTER=\"\(initialCluster.joined(separator: ","))\"",
                "STATEHOUSE_INITIAL_ADVERTISE_PEER_URLS=\"\(added.peerURLs.joined(separator: ","))\"",
                "STATEHOUSE_INITIAL_CLUSTER_STATE=\"existing\"",
            ])
        }
    }

    /// `member remove`.
    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Removes a member.", discussion: "Prints \"Member <ID> removed from cluster <cluster ID>\".")

        @Argument(help: "The member ID (hexadecimal).")
        var id: MemberID

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let change = try await global.withClient { try await $0.removeMember(id.value) }
            report(change, "removed from", id: id.value, format: global.writeOut)
        }
    }

    /// `member promote`.
    struct Promote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Promotes a learner that has caught up to a voting member.",
            discussion: "Prints \"Member <ID> promoted in cluster <cluster ID>\".")

        @Argument(help: "The learner's member ID (hexadecimal).")
        var id: MemberID

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let change = try await global.withClient { try await $0.promoteMember(id.value) }
            report(change, "promoted in", id: id.value, format: global.writeOut)
        }
    }

    /// `member update`.
    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replaces a member's peer URLs.", discussion: "Prints \"Member <ID> updated in cluster <cluster ID>\".")

        @Argument(help: "The member ID (hexadecimal).")
        var id: MemberID

        @Option(help: "The member's new peer URLs, comma-separated.")
        var peerUrls: String

        @OptionGroup var global: GlobalOptions

        mutating func validate() throws {
            if urls(peerUrls).isEmpty { throw ValidationError("--peer-urls is empty") }
        }

        func run() async throws {
            let change = try await global.withClient { try await $0.updateMember(id.value, peerURLs: urls(peerUrls)) }
            report(change, "updated in", id: id.value, format: global.writeOut)
        }
    }
}

/// Prints the outcome of a membership change: `ClusterMember <ID> <verb> cluster <cluster ID>`.
private func report(_ change: MemberChange, _ verb: String, id: UInt64, format: OutputFormat) {
    switch format {
    case .json:
        emit([
            JSONValue.object([("header", change.header.json), ("members", .array(change.members.map(MembersOutput.json)))])
                .rendered
        ])
    case .simple, .table: emit(["Member \(hex(id)) \(verb) cluster \(hex(change.header.clusterID))"])
    }
}

/// The URLs in a comma-separated list.
private func urls(_ text: String) -> [String] {
    text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}

/// A member ID given in hexadecimal, as etcdctl takes it.
struct MemberID: ExpressibleByArgument, Sendable {
    /// The ID.
    var value: UInt64

    init?(argument: String) {
        guard !argument.isEmpty, argument.count <= 16, let value = UInt64(argument, radix: 16) else { return nil }
        self.value = value
    }
}

/// What `member list` prints.
struct MembersOutput: Printable {
    var members: [ClusterMember]

    static func status(_ member: ClusterMember) -> String { member.name.isEmpty ? "unstarted" : "started" }

    /// A member's ID, status, name, peer URLs, client URLs and whether it is a learner.
    static func cells(_ member: ClusterMember) -> [String] {
        [
            member.idString, status(member), member.name, member.peerURLs.joined(separator: ","),
            member.clientURLs.joined(separator: ","), String(member.isLearner),
        ]
    }

    var simpleLines: [String] { members.map { Self.cells($0).joined(separator: ", ") } }

    var json: JSONValue { .object([("members", .array(members.map(Self.json)))]) }

    static func json(_ member: ClusterMember) -> JSONValue {
        .object([
            ("id", .string(member.idString)), ("name", .string(member.name)), ("peer_urls", .array(member.peerURLs.map(JSONValue.string))),
            ("client_urls", .array(member.clientURLs.map(JSONValue.string))), ("is_learner", .bool(member.isLearner)),
        ])
    }

    var table: Table? {
        Table(
            header: ["ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"],
            rows: members.map(Self.cells))
    }
}
