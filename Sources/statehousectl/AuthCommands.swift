import ArgumentParser
import Foundation
import StatehouseClient

/// `auth`: turns authentication on and off.
struct AuthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "auth",
        abstract: "Turns authentication on and off.",
        discussion: """
            Enabling needs a root user; as etcdctl, enable adds the root role and grants it to root if root \
            lacks it. Once enabled, every call needs --user.
            """,
        subcommands: [Enable.self, Disable.self])

    /// `auth enable`.
    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Enables authentication.", discussion: "Prints \"Authentication Enabled\".")

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let header = try await global.withClient { client in
                do {
                    return try await client.enableAuth()
                } catch let error as StatehouseError where error.message == "etcdserver: root user does not have root role" {
                    // As etcdctl: add the root role and grant it to root, then try again.
                    try await client.addRole("root")
                    try await client.grantRole("root", toUser: "root")
                    return try await client.enableAuth()
                }
            }
            printChange("Authentication Enabled", header: header, format: global.writeOut)
        }
    }

    /// `auth disable`.
    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Disables authentication (needs root's credentials).", discussion: "Prints \"Authentication Disabled\".")

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let header = try await global.withClient { try await $0.disableAuth() }
            printChange("Authentication Disabled", header: header, format: global.writeOut)
        }
    }
}

/// `user`: adds, removes and inspects users and their roles.
struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user",
        abstract: "Adds, deletes and inspects users, and grants them roles.",
        subcommands: [Add.self, Delete.self, Get.self, List.self, Passwd.self, GrantRole.self, RevokeRole.self])

    /// How a new password is given: on the command line, on standard input, or typed.
    struct PasswordOptions: ParsableArguments {
        @Option(name: .customLong("new-user-password"), help: "The password, instead of asking for it.")
        var newUserPassword: String?

        @Option(help: "Whether to ask for the password on the terminal (false: read one line from standard input).")
        var interactive = true

        /// The password: `given` (from NAME:PASSWORD), the option, a line of standard input, or
        /// typed twice on the terminal.
        ///
        /// - Throws: `ValidationError` when there is none.
        func password(for user: String, given: String?) throws -> String {
            if let given { return given }
            if let newUserPassword { return newUserPassword }
            if !interactive {
                guard let line = Swift.readLine(strippingNewline: true) else {
                    throw ValidationError("no password on standard input")
                }
                return line
            }
            guard let typed = readPassword(prompt: "Password of \(user): ") else {
                throw ValidationError(
                    "no password for \(user): give NAME:PASSWORD, --new-user-password, or --interactive=false with the password on standard input"
                )
            }
            guard readPassword(prompt: "Type password of \(user) again for confirmation: ") == typed else {
                throw ValidationError("the passwords do not match")
            }
            return typed
        }
    }

    /// `user add`.
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Adds a user.", discussion: "Prints \"User <name> created\".")

        @Argument(help: ArgumentHelp("The user's name, and optionally its password.", valueName: "name[:password]"))
        var user: String

        @Flag(help: "Create the user without a password (it authenticates with a client certificate only).")
        var noPassword = false

        @OptionGroup var passwordOptions: PasswordOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let (name, given) = splitUser(user)
            let password = noPassword ? nil : try passwordOptions.password(for: name, given: given)
            let header = try await global.withClient { try await $0.addUser(name, password: password) }
            printChange("User \(name) created", header: header, format: global.writeOut)
        }
    }

    /// `user delete`.
    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Deletes a user.", discussion: "Prints \"User <name> deleted\".")

        @Argument(help: "The user's name.")
        var name: String

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let header = try await global.withClient { try await $0.deleteUser(name) }
            printChange("User \(name) deleted", header: header, format: global.writeOut)
        }
    }

    /// `user get`.
    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Prints a user's roles.",
            discussion: """
                Prints "User: <name>" and "Roles: <role> …"; with --detail, each role's permissions as role get \
                prints them.
                """)

        @Argument(help: "The user's name.")
        var name: String

        @Flag(help: "Also print the permissions of each role.")
        var detail = false

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let (roles, permissions) = try await global.withClient { client in
                let roles = try await client.roles(ofUser: name)
                var permissions: [[AuthPermission]] = []
                if detail {
                    for role in roles { permissions.append(try await client.permissions(ofRole: role)) }
                }
                return (roles, permissions)
            }
            if global.writeOut == .json {
                emit([JSONValue.object([("name", .string(name)), ("roles", .array(roles.map { .string($0) }))]).rendered])
                return
            }
            if !detail {
                emit(["User: \(name)", (["Roles:"] + roles).joined(separator: " ")])
                return
            }
            var lines = ["User: \(name)"]
            for (role, permissions) in zip(roles, permissions) {
                lines.append("")
                lines += roleLines(role, permissions)
            }
            emit(lines)
        }
    }

    /// `user list`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Lists the users.", discussion: "Prints one name a line.")

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let users = try await global.withClient { try await $0.users() }
            printNames(users, field: "users", format: global.writeOut)
        }
    }

    /// `user passwd`.
    struct Passwd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Changes a user's password.", discussion: "Prints \"Password updated\".")

        @Argument(help: "The user's name.")
        var name: String

        @OptionGroup var passwordOptions: PasswordOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let password = try passwordOptions.password(for: name, given: nil)
            let header = try await global.withClient { try await $0.changePassword(ofUser: name, to: password) }
            printChange("Password updated", header: header, format: global.writeOut)
        }
    }

    /// `user grant-role`.
    struct GrantRole: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "grant-role", abstract: "Grants a role to a user.",
            discussion: "Prints \"Role <role> is granted to user <user>\".")

        @Argument(help: "The user's name.")
        var user: String

        @Argument(help: "The role.")
        var role: String

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let header = try await global.withClient { try await $0.grantRole(role, toUser: user) }
            printChange("Role \(role) is granted to user \(user)", header: header, format: global.writeOut)
        }
    }

    /// `user revoke-role`.
    struct RevokeRole: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "revoke-role", abstract: "Takes a role away from a user.",
            discussion: "Prints \"Role <role> is revoked from user <user>\".")

        @Argument(help: "The user's name.")
        var user: String

        @Argument(help: "The role.")
        var role: String

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let header = try await global.withClient { try await $0.revokeRole(role, fromUser: user) }
            printChange("Role \(role) is revoked from user \(user)", header: header, format: global.writeOut)
        }
    }
}

/// `role`: adds, removes and inspects roles and their permissions.
struct RoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "role",
        abstract: "Adds, deletes and inspects roles, and grants them permissions on keys.",
        subcommands: [Add.self, Delete.self, Get.self, List.self, GrantPermission.self, RevokePermission.self])

    /// `role add`.
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Adds a role.", discussion: "Prints \"Role <name> created\".")

        @Argument(help: "The role's name.")
        var name: String

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let header = try await global.withClient { try await $0.addRole(name) }
            printChange("Role \(name) created", header: header, format: global.writeOut)
        }
    }

    /// `role delete`.
    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Deletes a role.", discussion: "Prints \"Role <name> deleted\".")

        @Argument(help: "The role's name.")
        var name: String

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let header = try await global.withClient { try await $0.deleteRole(name) }
            printChange("Role \(name) deleted", header: header, format: global.writeOut)
        }
    }

    /// `role get`.
    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Prints a role's permissions.",
            discussion: """
                Prints "Role <name>", then "KV Read:" and "KV Write:", each followed by the keys and ranges \
                the role may read or write, one a line, as etcdctl does.
                """)

        @Argument(help: "The role's name.")
        var name: String

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let permissions = try await global.withClient { try await $0.permissions(ofRole: name) }
            if global.writeOut == .json {
                let entries: [JSONValue] = permissions.map { permission in
                    .object([
                        ("perm_type", .string(permission.type.rawValue)),
                        ("key", .string(String(decoding: permission.key, as: UTF8.self))),
                        ("range_end", .string(String(decoding: permission.rangeEnd, as: UTF8.self))),
                    ])
                }
                emit([JSONValue.object([("name", .string(name)), ("perm", .array(entries))]).rendered])
                return
            }
            emit(roleLines(name, permissions))
        }
    }

    /// `role list`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Lists the roles.", discussion: "Prints one name a line.")

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let roles = try await global.withClient { try await $0.roles() }
            printNames(roles, field: "roles", format: global.writeOut)
        }
    }

    /// `role grant-permission`.
    struct GrantPermission: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "grant-permission",
            abstract: "Gives a role read, write or readwrite permission on a key or a range of keys.",
            discussion: "Prints \"Role <name> updated\".")

        @Argument(help: "The role's name.")
        var name: String

        @Argument(help: "read, write or readwrite.")
        var type: AuthPermissionType

        @OptionGroup var keys: KeyRangeArguments
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let range = try keys.range
            let permission = AuthPermission(type, key: range.key, rangeEnd: range.rangeEnd)
            let header = try await global.withClient { try await $0.grantPermission(permission, toRole: name) }
            printChange("Role \(name) updated", header: header, format: global.writeOut)
        }
    }

    /// `role revoke-permission`.
    struct RevokePermission: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "revoke-permission",
            abstract: "Takes away a role's permission on a key or a range of keys.",
            discussion: """
                Prints "Permission of key <key> is revoked from role <name>", or "Permission of range [<key>, \
                <end>) is revoked from role <name>".
                """)

        @Argument(help: "The role's name.")
        var name: String

        @OptionGroup var keys: KeyRangeArguments
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let range = try keys.range
            let header = try await global.withClient {
                try await $0.revokePermission(key: range.key, rangeEnd: range.rangeEnd, fromRole: name)
            }
            let key = String(decoding: range.key, as: UTF8.self)
            let line =
                range.rangeEnd.isEmpty
                ? "Permission of key \(key) is revoked from role \(name)"
                : "Permission of range \(rangeText(key: range.key, rangeEnd: range.rangeEnd)) is revoked from role \(name)"
            printChange(line, header: header, format: global.writeOut)
        }
    }
}

extension AuthPermissionType: ExpressibleByArgument {}

/// `name[:password]` split at the first colon.
private func splitUser(_ text: String) -> (name: String, password: String?) {
    guard let colon = text.firstIndex(of: ":") else { return (text, nil) }
    return (String(text[..<colon]), String(text[text.index(after: colon)...]))
}

/// Prints an auth change: `line`, or the response header with `-w json`.
private func printChange(_ line: String, header: ResponseHeader, format: OutputFormat) {
    switch format {
    case .json: emit([JSONValue.object([("header", header.json)]).rendered])
    case .simple, .table: emit([line])
    }
}

/// Prints user or role names, one a line, or a JSON object with them under `field`.
private func printNames(_ names: [String], field: String, format: OutputFormat) {
    switch format {
    case .json: emit([JSONValue.object([(field, .array(names.map { .string($0) }))]).rendered])
    case .simple, .table: emit(names)
    }
}

/// A range as etcdctl prints it: `[key, end)`, or `[key, <open ended>` for every key from `key`.
private func rangeText(key: [UInt8], rangeEnd: [UInt8]) -> String {
    let start = String(decoding: key, as: UTF8.self)
    if rangeEnd == [0] { return "[\(start), <open ended>" }
    return "[\(start), \(String(decoding: rangeEnd, as: UTF8.self)))"
}

/// A role's permissions as etcdctl's `role get` prints them.
private func roleLines(_ role: String, _ permissions: [AuthPermission]) -> [String] {
    func line(_ permission: AuthPermission) -> String {
        if permission.rangeEnd.isEmpty { return "\t" + String(decoding: permission.key, as: UTF8.self) }
        var text = "\t" + rangeText(key: permission.key, rangeEnd: permission.rangeEnd)
        if KeyRange.prefix(permission.key).rangeEnd == permission.rangeEnd {
            text += " (prefix \(String(decoding: permission.key, as: UTF8.self)))"
        }
        return text
    }
    return ["Role \(role)", "KV Read:"] + permissions.filter { $0.type != .write }.map(line) + ["KV Write:"]
        + permissions.filter { $0.type != .read }.map(line)
}
