import CSQLite
import Foundation

public enum LedgerError: Error, CustomStringConvertible {
    case database(path: String, message: String)
    case damaged(path: String, message: String)

    public var description: String {
        switch self {
        case let .database(path, message): return "\(path): ledger database error: \(message)"
        case let .damaged(path, message):
            return "\(path): not a readable run ledger (\(message)). Move it aside to start the record afresh: "
                + "finished outputs stay, and every item is then redone once"
        }
    }
}

public enum ItemStatus: String, Sendable {
    case running, done, failed
}

/// One slide × stage row.
public struct LedgerRow: Equatable, Sendable {
    /// The slide key of a global stage's row, which runs once for the whole batch.
    public static let wholeBatch = "*"

    public var slide: String
    public var stage: String
    public var status: ItemStatus
    public var parametersHash: String
    public var inputKey: String
    public var outputs: String
    public var startedAt: Double
    public var seconds: Double
    public var error: String
    /// How many times the item completed: re-runs of up-to-date work do not count.
    public var completions: Int
}

/// The run ledger: SQLite in the output folder. Each update is its own transaction, so a kill at
/// any point leaves every finished item recorded; several shard processes may share the file.
public final class Ledger: @unchecked Sendable {
    public let path: String
    private var db: OpaquePointer?
    private let lock = NSLock()

    public init(path: String, readOnly: Bool = false) throws {
        self.path = path
        let flags = readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
        guard sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_FULLMUTEX, nil) == SQLITE_OK else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close(db)
            db = nil
            throw LedgerError.database(path: path, message: message)
        }
        // Shards write concurrently: wait for the lock rather than failing.
        sqlite3_busy_timeout(db, 60_000)
        do {
            if !readOnly {
                try execute("""
                    CREATE TABLE IF NOT EXISTS items (
                        slide TEXT NOT NULL, stage TEXT NOT NULL, status TEXT NOT NULL,
                        params_hash TEXT NOT NULL, input_key TEXT NOT NULL, outputs TEXT NOT NULL DEFAULT '',
                        started_at REAL NOT NULL DEFAULT 0, seconds REAL NOT NULL DEFAULT 0, error TEXT NOT NULL DEFAULT '',
                        completions INTEGER NOT NULL DEFAULT 0,
                        PRIMARY KEY (slide, stage))
                    """)
            }
            _ = try rows(where: "0", [])
        } catch let LedgerError.database(_, message) {
            throw LedgerError.damaged(path: path, message: message)
        }
    }

    deinit { sqlite3_close(db) }

    private func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        guard sqlite3_exec(db, sql, nil, nil, &message) == SQLITE_OK else {
            let text = message.map { String(cString: $0) } ?? "unknown error"
            sqlite3_free(message)
            throw LedgerError.database(path: path, message: text)
        }
    }

    private func withStatement<T>(_ sql: String, bind: [String], _ body: (OpaquePointer) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw LedgerError.database(path: path, message: String(cString: sqlite3_errmsg(db)))
        }
        defer { sqlite3_finalize(statement) }
        for (i, value) in bind.enumerated() { sqlite3_bind_text(statement, Int32(i + 1), value, -1, csqlite_transient()) }
        return try body(statement)
    }

    private func run(_ sql: String, _ bind: [String]) throws {
        try withStatement(sql, bind: bind) { statement in
            guard sqlite3_step(statement) == SQLITE_DONE else {
                throw LedgerError.database(path: path, message: String(cString: sqlite3_errmsg(db)))
            }
        }
    }

    public func row(slide: String, stage: String) throws -> LedgerRow? {
        try rows(where: "slide = ? AND stage = ?", [slide, stage]).first
    }

    public func allRows() throws -> [LedgerRow] { try rows(where: "1", []) }

    private func rows(where condition: String, _ bind: [String]) throws -> [LedgerRow] {
        try withStatement("SELECT slide, stage, status, params_hash, input_key, outputs, started_at, seconds, error, completions FROM items WHERE \(condition) ORDER BY slide, stage", bind: bind) { statement in
            var result: [LedgerRow] = []
            while sqlite3_step(statement) == SQLITE_ROW {
                func text(_ i: Int32) -> String { sqlite3_column_text(statement, i).map { String(cString: $0) } ?? "" }
                result.append(LedgerRow(slide: text(0), stage: text(1), status: ItemStatus(rawValue: text(2)) ?? .failed,
                                        parametersHash: text(3), inputKey: text(4), outputs: text(5),
                                        startedAt: sqlite3_column_double(statement, 6), seconds: sqlite3_column_double(statement, 7),
                                        error: text(8), completions: Int(sqlite3_column_int64(statement, 9))))
            }
            return result
        }
    }

    public func remove(slide: String, stage: String) throws {
        try run("DELETE FROM items WHERE slide = ? AND stage = ?", [slide, stage])
    }

    public func markRunning(slide: String, stage: String, parametersHash: String, inputKey: String) throws {
        try run("""
            INSERT INTO items (slide, stage, status, params_hash, input_key, started_at) VALUES (?, ?, 'running', ?, ?, ?)
            ON CONFLICT (slide, stage) DO UPDATE SET status = 'running', params_hash = excluded.params_hash,
                input_key = excluded.input_key, started_at = excluded.started_at, error = ''
            """, [slide, stage, parametersHash, inputKey, String(Date().timeIntervalSince1970)])
    }

    public func markDone(slide: String, stage: String, outputs: String, seconds: Double) throws {
        try run("UPDATE items SET status = 'done', outputs = ?, seconds = ?, error = '', completions = completions + 1 WHERE slide = ? AND stage = ?",
                [outputs, String(seconds), slide, stage])
    }

    public func markFailed(slide: String, stage: String, error: String, seconds: Double) throws {
        try run("UPDATE items SET status = 'failed', error = ?, seconds = ? WHERE slide = ? AND stage = ?",
                [error, String(seconds), slide, stage])
    }
}
