import Annotations

extension TissueMask {
    /// The outline of the tissue as polygons with holes, in level-0 pixels: every boundary between
    /// tissue and background mask pixels, walked with the tissue on the right, collinear points
    /// merged. Where two tissue pixels touch only at a corner the walk turns to stay with its own
    /// pixel, so every ring is simple.
    public func contours() -> [Polygon] {
        struct Vertex: Hashable { var x: Int, y: Int }
        func tissue(_ x: Int, _ y: Int) -> Bool { x >= 0 && y >= 0 && x < width && y < height && bits[y * width + x] != 0 }
        var outgoing: [Vertex: [Vertex]] = [:]
        for y in 0..<height {
            for x in 0..<width where tissue(x, y) {
                // Clockwise on screen around the pixel, one edge per side that faces background.
                if !tissue(x, y - 1) { outgoing[Vertex(x: x, y: y), default: []].append(Vertex(x: x + 1, y: y)) }
                if !tissue(x + 1, y) { outgoing[Vertex(x: x + 1, y: y), default: []].append(Vertex(x: x + 1, y: y + 1)) }
                if !tissue(x, y + 1) { outgoing[Vertex(x: x + 1, y: y + 1), default: []].append(Vertex(x: x, y: y + 1)) }
                if !tissue(x - 1, y) { outgoing[Vertex(x: x, y: y + 1), default: []].append(Vertex(x: x, y: y)) }
            }
        }
        var rings: [[Vertex]] = []
        while let (start, ends) = outgoing.first(where: { !$0.value.isEmpty }) {
            var ring = [start]
            var previous = start, current = ends[0]
            outgoing[start]?.removeFirst()
            while current != start {
                ring.append(current)
                guard var choices = outgoing[current], !choices.isEmpty else { break }
                var pick = 0
                if choices.count > 1 {
                    // Saddle: take the right turn (screen coordinates), which hugs the current pixel.
                    let (dx, dy) = (current.x - previous.x, current.y - previous.y)
                    pick = choices.firstIndex { $0.x - current.x == -dy && $0.y - current.y == dx } ?? 0
                }
                let next = choices.remove(at: pick)
                outgoing[current] = choices
                (previous, current) = (current, next)
            }
            rings.append(ring)
        }
        let scaled = rings.map { ring in simplified(ring.map { Point(Double($0.x), Double($0.y)) }).map { Point($0.x * scaleX, $0.y * scaleY) } }
        // Outer rings run clockwise on screen (positive shoelace here), holes the other way.
        let outers = scaled.filter { signedArea($0) > 0 }, holes = scaled.filter { signedArea($0) < 0 }
        var holesOf = [[[Point]]](repeating: [], count: outers.count)
        for hole in holes {
            // A quarter pixel off the hole's corner: inside the outer ring, off every grid line.
            let probe = Point(hole[0].x + 0.25 * scaleX, hole[0].y + 0.25 * scaleY)
            let containing = outers.indices.filter { contains(outers[$0], probe) }.min { abs(signedArea(outers[$0])) < abs(signedArea(outers[$1])) }
            if let containing { holesOf[containing].append(hole) }
        }
        return outers.indices.map { Polygon(exterior: outers[$0], holes: holesOf[$0]) }
    }
}

/// Drops points that lie on the straight line between their neighbours.
private func simplified(_ ring: [Point]) -> [Point] {
    ring.indices.compactMap { i in
        let a = ring[(i + ring.count - 1) % ring.count], b = ring[i], c = ring[(i + 1) % ring.count]
        return (b.x - a.x) * (c.y - b.y) == (b.y - a.y) * (c.x - b.x) ? nil : b
    }
}

/// Even–odd ray casting; a point on a hole's boundary lies strictly inside its outer ring.
private func contains(_ ring: [Point], _ point: Point) -> Bool {
    var inside = false
    for i in ring.indices {
        let a = ring[i], b = ring[(i + 1) % ring.count]
        if (a.y > point.y) != (b.y > point.y), point.x < a.x + (point.y - a.y) / (b.y - a.y) * (b.x - a.x) { inside.toggle() }
    }
    return inside
}
