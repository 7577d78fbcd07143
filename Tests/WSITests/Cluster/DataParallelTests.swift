import Foundation
import NN
import Pipeline
import Storage
import XCTest

/// Data-parallel pretraining under Open MPI's mpirun, on the real Kather patches in samples/.
/// Each test starts the built `wsi` binary as 1 or 2 ranks on this machine.
final class DataParallelTests: XCTestCase {
    static let mpirun = "/usr/bin/mpirun"
    static let patches = EvaluationTests.kather
    /// 24 patches, global batch 16: one step per epoch. The authors' recipe exercises the
    /// self-distillation loss and the teacher centre, which the ranks must share too.
    static let training = ["--patches", patches, "--preset", "tiny96", "--batch", "16", "--recipe", "authors", "--lr", "0.01", "--quiet"]
    static let peakLearningRate: Float = 0.01 * 16 / 256

    /// Starts `wsi ARGS` under mpirun with `ranks` ranks, output into `log`.
    func launch(_ ranks: Int, _ arguments: [String], log: String, environment: [String: String] = [:]) throws -> Process {
        try launch(apps: [(ranks, arguments, nil)], log: log, environment: environment)
    }

    /// mpirun's `A : B` form: each app context its own ranks, arguments and working folder.
    func launch(apps: [(ranks: Int, arguments: [String], folder: String?)], log: String, environment: [String: String] = [:]) throws -> Process {
        guard let wsi = PipelineTests.wsiBinary() else { throw XCTSkip("the wsi executable was not built beside the tests") }
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: Self.mpirun), "Open MPI's mpirun (openmpi-bin) is missing")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.mpirun)
        let contexts = apps.map { app in ["-np", String(app.ranks)] + (app.folder.map { ["-wdir", $0] } ?? []) + [wsi] + app.arguments }
        process.arguments = ["--oversubscribe", "--allow-run-as-root"] + contexts.joined(separator: [":"])
        // Containers often forbid the cross-memory attach Open MPI's shared-memory transport
        // tries first for large messages; plain copies work everywhere.
        let settings = ["OMPI_MCA_btl_vader_single_copy_mechanism": "none"].merging(environment) { $1 }
        process.environment = ProcessInfo.processInfo.environment.merging(settings) { $1 }
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = FileHandle(forWritingAtPath: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    func runToEnd(_ ranks: Int, _ arguments: [String], in dir: String) throws -> (status: Int32, output: String) {
        let log = dir + "/mpirun-\(UUID().uuidString).log"
        let process = try launch(ranks, arguments, log: log)
        process.waitUntilExit()
        return (process.terminationStatus, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    func plain(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
        guard let wsi = PipelineTests.wsiBinary() else { throw XCTSkip("the wsi executable was not built beside the tests") }
        return try PipelineTests.capture(wsi, arguments, environment: environment)
    }

    func model(_ run: String) throws -> [String: NamedTensor] {
        try Safetensors.read(path: run + "/pretrain/model.safetensors").tensors
    }

    /// Parameters of `a` and `b` agree tensor by tensor (relative to the tensor's norm). The key
    /// part of each qkv bias is compared within three learning rates instead: attention is
    /// invariant to it, so its true gradient is exactly zero and Adam turns the rounding noise
    /// of two summation orders into steps of up to one learning rate.
    func assertSameParameters(_ a: [String: NamedTensor], _ b: [String: NamedTensor], tolerance: Float, file: StaticString = #filePath,
                              line: UInt = #line) {
        XCTAssertEqual(Set(a.keys), Set(b.keys), file: file, line: line)
        var worst: (Float, String) = (0, "")
        for (name, x) in a {
            guard let y = b[name]?.floats, y.count == x.floats.count else { return XCTFail("\(name) differs in shape", file: file, line: line) }
            var kept = Array(x.floats.indices)
            if name.hasSuffix("attn.qkv.bias") {
                let width = x.floats.count / 3
                for i in width..<(2 * width) {
                    XCTAssertLessThanOrEqual(abs(x.floats[i] - y[i]), 3 * Self.peakLearningRate, "\(name)[\(i)]", file: file, line: line)
                }
                kept = Array(0..<width) + Array((2 * width)..<(3 * width))
            }
            let difference = kept.reduce(Float(0)) { $0 + (x.floats[$1] - y[$1]) * (x.floats[$1] - y[$1]) }.squareRoot()
            let norm = kept.reduce(Float(0)) { $0 + x.floats[$1] * x.floats[$1] }.squareRoot()
            let relative = difference / max(norm, 1e-12)
            if relative > worst.0 { worst = (relative, name) }
        }
        XCTAssertLessThanOrEqual(worst.0, tolerance, "largest relative difference: \(worst.1)", file: file, line: line)
    }

    /// metrics.csv's loss columns, step by step.
    func losses(_ run: String) throws -> [[Double]] { try TestData.metricsColumns(run + "/pretrain/metrics.csv") }

    func testTwoRanksTakeTheStepsOfOneProcess() throws {
        let dir = TestData.scratchDirectory()
        let steps = Self.training + ["--epochs", "3"]
        let alone = try plain(["pretrain"] + steps + ["--out", dir + "/alone"])
        XCTAssertEqual(alone.status, 0, alone.output)
        let two = try runToEnd(2, ["pretrain"] + steps + ["--out", dir + "/two"], in: dir)
        XCTAssertEqual(two.status, 0, two.output)
        XCTAssertTrue(two.output.contains("3 steps of 16 on 24 patches over 2 ranks"), two.output)
        // One rank under mpirun is bound to one core; the sums do not depend on the core count.
        let one = try runToEnd(1, ["pretrain"] + steps + ["--out", dir + "/one"], in: dir)
        XCTAssertEqual(one.status, 0, one.output)

        XCTAssertEqual(FileManager.default.contents(atPath: dir + "/one/pretrain/model.safetensors"),
                       FileManager.default.contents(atPath: dir + "/alone/pretrain/model.safetensors"), "mpirun -np 1 is a plain run, bit for bit")
        // Two ranks sum each gradient in another order than one process. The rounding that leaves
        // depends on the instruction set: 7e-7 of a tensor's norm with AVX-512, 1.4e-5 with AVX2
        // (a zero-initialised teacher-head bias, whose near-zero gradient Adam scales up).
        assertSameParameters(try model(dir + "/alone"), try model(dir + "/two"), tolerance: 3e-5)
        let (a, b) = (try losses(dir + "/alone"), try losses(dir + "/two"))
        XCTAssertEqual(a.count, 3)
        XCTAssertEqual(a.count, b.count)
        for (x, y) in zip(a, b) {
            XCTAssertEqual(x[0], y[0])
            for column in 3..<9 { XCTAssertEqual(x[column], y[column], accuracy: 1e-5 * max(1, abs(x[column])), "metrics column \(column)") }
        }
        // Only the leader writes.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/two/pretrain/checkpoints").count, 2)
    }

    /// Adapting a published encoder (the uni-like fixture) over two ranks takes one process's
    /// steps; only the leader writes the adapted encoder. The mean-entropy term of the adapt
    /// recipe needs the whole batch in one process, so it is off here.
    func testTwoRanksAdaptAPublishedEncoderAsOneProcess() throws {
        let dir = TestData.scratchDirectory()
        let fixture = TestData.path("encoders/uni-like")
        let steps = ["--patches", Self.patches, "--init-encoder", fixture + "/config.json", "--weights", fixture + "/model.safetensors",
                     "--batch", "8", "--epochs", "1", "--lr", "0.01", "--mean-entropy-weight", "0", "--prototypes", "64", "--quiet"]
        let alone = try plain(["pretrain"] + steps + ["--out", dir + "/alone"])
        XCTAssertEqual(alone.status, 0, alone.output)
        let two = try runToEnd(2, ["pretrain"] + steps + ["--out", dir + "/two"], in: dir)
        XCTAssertEqual(two.status, 0, two.output)
        XCTAssertTrue(two.output.contains("3 steps of 8 on 24 patches over 2 ranks"), two.output)
        assertSameParameters(try model(dir + "/alone"), try model(dir + "/two"), tolerance: 3e-5)
        let adapted = { (run: String) in try Safetensors.read(path: run + "/pretrain/encoder.safetensors").tensors }
        assertSameParameters(try adapted(dir + "/alone"), try adapted(dir + "/two"), tolerance: 3e-5)
    }

    /// A rank killed mid-run ends the job (mpirun reports it); the same command then continues
    /// from the last checkpoint and ends where an uninterrupted run ends.
    func testKilledRankEndsTheJobAndTheRunResumes() throws {
        let dir = TestData.scratchDirectory()
        let arguments = ["pretrain"] + Self.training + ["--epochs", "10", "--checkpoint-every", "2", "--out", dir + "/run"]
        let victim = try launch(2, arguments, log: dir + "/killed.log")
        let pointer = dir + "/run/.pretrain.partial/checkpoint.json"
        let deadline = Date().addingTimeInterval(120)
        while victim.isRunning, !FileManager.default.fileExists(atPath: pointer), Date() < deadline { usleep(50_000) }
        let rank = try XCTUnwrap(rankProcess(1, of: victim.processIdentifier), "rank 1 not found")
        kill(rank, SIGKILL)
        victim.waitUntilExit()
        let log = try String(contentsOfFile: dir + "/killed.log", encoding: .utf8)
        XCTAssertNotEqual(victim.terminationStatus, 0, log)
        XCTAssertTrue(log.contains("rank 1"), log)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/run/pretrain/model.safetensors"), "the job had not finished")

        let resumed = try runToEnd(2, arguments, in: dir)
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertEqual(try losses(dir + "/run").map { Int($0[0]) }, Array(1...10), "each step once in metrics.csv")
        let uninterrupted = try plain(["pretrain"] + Self.training + ["--epochs", "10", "--out", dir + "/alone"])
        XCTAssertEqual(uninterrupted.status, 0, uninterrupted.output)
        assertSameParameters(try model(dir + "/alone"), try model(dir + "/run"), tolerance: 1e-5)
    }

    /// A rank that stops answering (here: stopped by a signal) ends the job after the collective
    /// timeout, with a message naming what the others were waiting for.
    func testHungRankEndsTheJobAfterTheTimeout() throws {
        let dir = TestData.scratchDirectory()
        let arguments = ["pretrain"] + Self.training + ["--epochs", "50", "--out", dir + "/run"]
        let job = try launch(2, arguments, log: dir + "/hung.log", environment: ["WSI_COLLECTIVE_TIMEOUT": "3"])
        let metrics = dir + "/run/.pretrain.partial/metrics.csv"
        let deadline = Date().addingTimeInterval(120)
        while job.isRunning, ((try? String(contentsOfFile: metrics, encoding: .utf8))?.split(separator: "\n").count ?? 0) < 2, Date() < deadline {
            usleep(50_000)
        }
        let rank = try XCTUnwrap(rankProcess(1, of: job.processIdentifier), "rank 1 not found")
        kill(rank, SIGSTOP)
        let stopped = Date()
        while job.isRunning, Date().timeIntervalSince(stopped) < 60 { usleep(100_000) }
        if job.isRunning {
            kill(rank, SIGKILL)
            job.terminate()
        }
        job.waitUntilExit()
        let log = try String(contentsOfFile: dir + "/hung.log", encoding: .utf8)
        XCTAssertNotEqual(job.terminationStatus, 0, log)
        XCTAssertTrue(log.contains("rank 0 of 2 ends the job: no answer from the other ranks for 3 s while averaging"), log)
    }

    /// train-mil deals its folds round the ranks: the same fold models, bit for bit, and the
    /// same held-out predictions as one process with as many threads as each rank (OpenBLAS
    /// picks its kernels by matrix size, and a thread's share of the small MIL layers changes
    /// with the thread count, so the last bits of MIL weights do).
    func testMILFoldsTrainOnDifferentRanks() throws {
        let dir = TestData.scratchDirectory()
        let bags = try MILStageTests.writeCLAMCohort(in: dir)
        var labels = "slide_id,label\n"
        for bag in bags { labels += "\(bag.slide),\(bag.positive ? "tumour" : "normal")\n" }
        try labels.write(toFile: dir + "/labels.csv", atomically: true, encoding: .utf8)
        let arguments = ["train-mil", "--features", dir + "/h5_files", "--labels", dir + "/labels.csv", "--folds", "3", "--epochs", "4",
                         "--min-epochs", "2", "--hidden", "16", "--attention-width", "8", "--quiet"]
        let alone = try plain(arguments + ["--out", dir + "/alone"], environment: ["WSI_THREADS": "1"])
        XCTAssertEqual(alone.status, 0, alone.output)
        let two = try runToEnd(2, arguments + ["--out", dir + "/two"], in: dir)
        XCTAssertEqual(two.status, 0, two.output)
        for name in ["fold-0.safetensors", "fold-1.safetensors", "fold-2.safetensors", "predictions.csv"] {
            let a = FileManager.default.contents(atPath: dir + "/alone/train-mil/" + name)
            XCTAssertNotNil(a, name)
            XCTAssertEqual(a, FileManager.default.contents(atPath: dir + "/two/train-mil/" + name), name)
        }
    }

    /// A run with pretraining whose leader cannot even start (no slides) still lets the waiting
    /// followers go: the job ends with the leader's message instead of hanging.
    func testLeaderThatCannotStartReleasesTheFollowers() throws {
        let dir = TestData.scratchDirectory()
        try FileManager.default.createDirectory(atPath: dir + "/empty", withIntermediateDirectories: true)
        let job = try launch(2, ["run", FrontDoorTests.repository + "/pipelines/full.yaml", "--slides", dir + "/empty", "--out", dir + "/out"],
                             log: dir + "/job.log")
        let started = Date()
        while job.isRunning, Date().timeIntervalSince(started) < 60 { usleep(100_000) }
        let hung = job.isRunning
        if hung { job.terminate() }
        job.waitUntilExit()
        let log = try String(contentsOfFile: dir + "/job.log", encoding: .utf8)
        XCTAssertFalse(hung, "the followers were left waiting: " + log)
        XCTAssertNotEqual(job.terminationStatus, 0)
        XCTAssertTrue(log.contains("no slides found in"), log)
    }

    func testBatchThatDoesNotSplitOverTheRanksIsRefused() throws {
        let dir = TestData.scratchDirectory()
        let result = try runToEnd(2, ["pretrain", "--patches", Self.patches, "--preset", "tiny96", "--batch", "15", "--epochs", "1", "--quiet",
                                      "--out", dir + "/run"], in: dir)
        XCTAssertEqual(result.status, 2, "a refused option, on every rank: " + result.output)
        XCTAssertTrue(result.output.contains("the batch of 15 does not split evenly over 2 ranks"), result.output)
    }

    /// Waits at most `seconds` for `job`; returns its status and log, or fails naming the hang.
    func finish(_ job: Process, log: String, within seconds: Double) throws -> (status: Int32, output: String) {
        let started = Date()
        while job.isRunning, Date().timeIntervalSince(started) < seconds { usleep(50_000) }
        let hung = job.isRunning
        if hung { job.terminate() }
        job.waitUntilExit()
        let output = try String(contentsOfFile: log, encoding: .utf8)
        XCTAssertFalse(hung, "the job was still running after \(seconds) s: " + output)
        return (job.terminationStatus, output)
    }

    /// Ranks started with other options than the leader's would train on the leader's patches
    /// and settings: the job is refused at once, naming the option.
    func testRanksStartedWithDifferentOptionsAreRefused() throws {
        let dir = TestData.scratchDirectory()
        let common = ["--preset", "tiny96", "--batch", "16", "--epochs", "1", "--quiet", "--out", dir + "/run"]
        let job = try launch(apps: [(1, ["pretrain", "--patches", Self.patches] + common, nil), (1, ["pretrain", "--patches", "/nonexistent"] + common, nil)],
                             log: dir + "/job.log")
        let (status, output) = try finish(job, log: dir + "/job.log", within: 30)
        XCTAssertEqual(status, 2, output)
        XCTAssertTrue(output.contains("rank 1 was started with --patches /nonexistent, rank 0 with --patches \(Self.patches)"), output)
    }

    /// The same command refused on one rank only (a relative path that exists where rank 0
    /// runs, not where rank 1 does) ends the whole job within seconds; it used to leave rank 0
    /// waiting in a collective for ever.
    func testAFollowerThatRefusesItsArgumentsEndsTheJob() throws {
        let dir = TestData.scratchDirectory()
        for folder in ["here", "there"] { try FileManager.default.createDirectory(atPath: dir + "/" + folder, withIntermediateDirectories: true) }
        try FileManager.default.createSymbolicLink(atPath: dir + "/here/patches", withDestinationPath: Self.patches)
        let command = ["pretrain", "--patches", "patches", "--preset", "tiny96", "--batch", "16", "--epochs", "1", "--quiet", "--out", dir + "/run"]
        let job = try launch(apps: [(1, command, dir + "/here"), (1, command, dir + "/there")], log: dir + "/job.log")
        let (status, output) = try finish(job, log: dir + "/job.log", within: 30)
        XCTAssertEqual(status, 2, output)
        XCTAssertTrue(output.contains("rank 1 of 2 ends the job: wsi pretrain: --patches: no such file or folder 'patches'"), output)
    }

    /// Per-slide stages under mpirun: each rank takes a shard of the slides, into one run folder.
    func testPerSlideStageShardsOverRanks() throws {
        let dir = TestData.scratchDirectory()
        let slides = dir + "/slides"
        try FileManager.default.createDirectory(atPath: slides, withIntermediateDirectories: true)
        for (i, source) in [TestData.cmuSVS, TestData.cmuTIFF, TestData.cmuSVS, TestData.cmuTIFF].enumerated() {
            try FileManager.default.copyItem(atPath: source, toPath: slides + "/s\(i).\(URL(fileURLWithPath: source).pathExtension)")
        }
        let result = try runToEnd(2, ["tile", slides, "--out", dir + "/out", "--level", "0", "--size", "256", "--quiet"], in: dir)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("in shard 1/2") && result.output.contains("in shard 2/2"), result.output)
        let rows = try Ledger(path: dir + "/out/" + RunDescription.ledgerName).allRows()
        XCTAssertEqual(Set(rows.filter { $0.status == .done }.map(\.slide)), ["s0", "s1", "s2", "s3"])
    }

    func testArrayTaskTakesItsShard() throws {
        XCTAssertNil(try SchedulerShard.fromArray([:]))
        XCTAssertEqual(try SchedulerShard.fromArray(["SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "4"]).map { [$0.index, $0.count] }, [1, 4])
        XCTAssertEqual(try SchedulerShard.fromArray(["SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "10"])
            .map { [$0.index, $0.count] }, [3, 3])
        XCTAssertThrowsError(try SchedulerShard.fromArray(["SLURM_ARRAY_TASK_ID": "7"])) { error in
            XCTAssertTrue("\(error)".contains("SLURM_ARRAY_TASK_COUNT"))
        }
        XCTAssertThrowsError(try SchedulerShard.fromArray(["SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_COUNT": "3"]))
    }

    /// The process of rank `rank` among mpirun's children (Open MPI starts local ranks itself).
    func rankProcess(_ rank: Int, of launcher: Int32) -> pid_t? {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = Int32(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, Int32(fields[1]) == launcher,
                  let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { continue }
            if environment.split(separator: 0).contains(where: { String(decoding: $0, as: UTF8.self) == "OMPI_COMM_WORLD_RANK=\(rank)" }) {
                return pid
            }
        }
        return nil
    }
}
