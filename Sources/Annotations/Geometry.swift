import Foundation

/// A point in level-0 pixels, origin top-left (QuPath's coordinates).
public struct Point: Equatable, Sendable, Codable {
    public var x: Double
    public var y: Double
    public init(_ x: Double, _ y: Double) { self.x = x; self.y = y }
}

/// An axis-aligned rectangle in level-0 pixels.
public struct Rect: Equatable, Sendable {
    public var minX: Double, minY: Double, maxX: Double, maxY: Double
    public init(x: Double, y: Double, width: Double, height: Double) { (minX, minY, maxX, maxY) = (x, y, x + width, y + height) }
    public var area: Double { max(0, maxX - minX) * max(0, maxY - minY) }
    public func intersects(_ other: Rect) -> Bool { minX < other.maxX && other.minX < maxX && minY < other.maxY && other.minY < maxY }
}

/// A polygon with holes: the outer ring and the rings cut out of it, each closed implicitly.
public struct Polygon: Equatable, Sendable {
    public var exterior: [Point]
    public var holes: [[Point]]
    public let bounds: Rect

    public init(exterior: [Point], holes: [[Point]] = []) {
        self.exterior = exterior
        self.holes = holes
        let xs = exterior.map(\.x), ys = exterior.map(\.y)
        bounds = Rect(x: xs.min() ?? 0, y: ys.min() ?? 0, width: (xs.max() ?? 0) - (xs.min() ?? 0), height: (ys.max() ?? 0) - (ys.min() ?? 0))
    }

    public var area: Double { abs(signedArea(exterior)) - holes.map { abs(signedArea($0)) }.reduce(0, +) }

    /// Area of the polygon inside `rect`: each ring clipped to the rectangle (Sutherland–Hodgman,
    /// exact for any simple ring against a convex window), holes subtracted.
    public func area(inside rect: Rect) -> Double {
        guard bounds.intersects(rect) else { return 0 }
        let outer = abs(signedArea(clip(exterior, to: rect)))
        let cut = holes.map { abs(signedArea(clip($0, to: rect))) }.reduce(0, +)
        return max(0, outer - cut)
    }
}

/// Shoelace formula; positive for counter-clockwise rings in a y-up frame.
public func signedArea(_ ring: [Point]) -> Double {
    guard ring.count >= 3 else { return 0 }
    var sum = 0.0
    for i in ring.indices {
        let a = ring[i], b = ring[(i + 1) % ring.count]
        sum += a.x * b.y - b.x * a.y
    }
    return sum / 2
}

/// Whether `point` lies inside `ring` or on its edge (even-odd rule; an edge counts as inside,
/// since QuPath's holes may share vertices with their shell).
func isInsideOrOn(_ point: Point, _ ring: [Point]) -> Bool {
    var inside = false
    for i in ring.indices {
        let a = ring[i], b = ring[(i + 1) % ring.count]
        let cross = (b.x - a.x) * (point.y - a.y) - (b.y - a.y) * (point.x - a.x)
        if cross == 0, min(a.x, b.x) <= point.x, point.x <= max(a.x, b.x), min(a.y, b.y) <= point.y, point.y <= max(a.y, b.y) { return true }
        if (a.y > point.y) != (b.y > point.y), point.x < a.x + (point.y - a.y) * (b.x - a.x) / (b.y - a.y) { inside.toggle() }
    }
    return inside
}

/// The part of `ring` inside `rect`, one rectangle edge at a time.
func clip(_ ring: [Point], to rect: Rect) -> [Point] {
    var output = ring
    let edges: [(inside: (Point) -> Bool, cross: (Point, Point) -> Point)] = [
        ({ $0.x >= rect.minX }, { a, b in Point(rect.minX, a.y + (b.y - a.y) * (rect.minX - a.x) / (b.x - a.x)) }),
        ({ $0.x <= rect.maxX }, { a, b in Point(rect.maxX, a.y + (b.y - a.y) * (rect.maxX - a.x) / (b.x - a.x)) }),
        ({ $0.y >= rect.minY }, { a, b in Point(a.x + (b.x - a.x) * (rect.minY - a.y) / (b.y - a.y), rect.minY) }),
        ({ $0.y <= rect.maxY }, { a, b in Point(a.x + (b.x - a.x) * (rect.maxY - a.y) / (b.y - a.y), rect.maxY) }),
    ]
    for edge in edges {
        let input = output
        output = []
        guard !input.isEmpty else { break }
        for i in input.indices {
            let current = input[i], previous = input[(i + input.count - 1) % input.count]
            switch (edge.inside(previous), edge.inside(current)) {
            case (true, true): output.append(current)
            case (true, false): output.append(edge.cross(previous, current))
            case (false, true): output += [edge.cross(previous, current), current]
            case (false, false): break
            }
        }
    }
    return output
}

/// The first pair of non-adjacent edges of `ring` that cross, or nil. Edges are bucketed on a
/// grid so rings of thousands of points are checked in about linear time.
public func selfIntersection(_ ring: [Point]) -> (Int, Int)? {
    let n = ring.count
    let xs = ring.map(\.x), ys = ring.map(\.y)
    guard n >= 4, let minX = xs.min(), let maxX = xs.max(), let minY = ys.min(), let maxY = ys.max() else { return nil }
    let side = max(1, Int(Double(n).squareRoot()))
    let cellW = max((maxX - minX) / Double(side), 1e-9), cellH = max((maxY - minY) / Double(side), 1e-9)
    var buckets: [Int: [Int]] = [:]
    func cells(_ i: Int) -> [Int] {
        let a = ring[i], b = ring[(i + 1) % n]
        let c0 = min(side - 1, Int((min(a.x, b.x) - minX) / cellW)), c1 = min(side - 1, Int((max(a.x, b.x) - minX) / cellW))
        let r0 = min(side - 1, Int((min(a.y, b.y) - minY) / cellH)), r1 = min(side - 1, Int((max(a.y, b.y) - minY) / cellH))
        return (r0...r1).flatMap { r in (c0...c1).map { r * side + $0 } }
    }
    for i in 0..<n { for cell in cells(i) { buckets[cell, default: []].append(i) } }
    for members in buckets.values where members.count > 1 {
        for (p, i) in members.enumerated() {
            for j in members[(p + 1)...] {
                let adjacent = abs(i - j) == 1 || abs(i - j) == n - 1
                if !adjacent, segmentsCross(ring[i], ring[(i + 1) % n], ring[j], ring[(j + 1) % n]) { return (min(i, j), max(i, j)) }
            }
        }
    }
    return nil
}

/// Proper crossing or touching of two segments.
func segmentsCross(_ a: Point, _ b: Point, _ c: Point, _ d: Point) -> Bool {
    func orient(_ p: Point, _ q: Point, _ r: Point) -> Double { (q.x - p.x) * (r.y - p.y) - (q.y - p.y) * (r.x - p.x) }
    func within(_ p: Point, _ q: Point, _ r: Point) -> Bool {
        min(p.x, q.x) <= r.x && r.x <= max(p.x, q.x) && min(p.y, q.y) <= r.y && r.y <= max(p.y, q.y)
    }
    let d1 = orient(c, d, a), d2 = orient(c, d, b), d3 = orient(a, b, c), d4 = orient(a, b, d)
    if ((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0)) { return true }
    return (d1 == 0 && within(c, d, a)) || (d2 == 0 && within(c, d, b)) || (d3 == 0 && within(a, b, c)) || (d4 == 0 && within(a, b, d))
}
