import Foundation
import CKernels
@testable import NN
@testable import SDMAE
import XCTest

final class ParallelChunkTests: XCTestCase {
    /// Aligned chunks cover the range once, in order, and start on the alignment.
    func testChunksStartOnTheAlignment() {
        for (count, alignment) in [(100, 48), (912, 48), (128, 48), (47, 48), (1000, 1)] {
            let lock = NSLock()
            var ranges: [Range<Int>] = []
            Parallel.forChunks(count, grain: 8, alignment: alignment) { range in lock.withLock { ranges.append(range) } }
            ranges.sort { $0.lowerBound < $1.lowerBound }
            XCTAssertEqual(ranges.first?.lowerBound, 0)
            XCTAssertEqual(ranges.last?.upperBound, count)
            for (a, b) in zip(ranges, ranges.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound, "\(count): contiguous") }
            for range in ranges { XCTAssertEqual(range.lowerBound % alignment, 0, "\(count) by \(alignment): \(ranges)") }
            XCTAssertFalse(ranges.contains { $0.isEmpty }, "\(ranges)")
            if Parallel.threads > 1, count >= 2 * alignment { XCTAssertGreaterThan(ranges.count, 1, "\(count) is split") }
        }
    }
}
