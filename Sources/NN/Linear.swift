/// y = x Wᵀ + b over `rows` rows. W is [out, in] as in PyTorch.
public final class Linear {
    public let weight: Parameter
    public let bias: Parameter?
    public let inputs: Int
    public let outputs: Int
    /// The first layer of a network has no one to pass an input gradient to.
    public var computesInputGradient = true

    /// Where the products are cut between threads. OpenBLAS's kernels round a row of a product
    /// slightly differently depending on where it falls in their register tiles (12 rows in the
    /// AVX2 matrix products it picks on Zen and Haswell), so a cut moved by the thread count moved
    /// the bits. Measured there: cuts at multiples of 48 give one core's bits on two (24 do not).
    static let tileRows = 48

    public let output = Buffer(count: 0)
    public let inputGradient = Buffer(count: 0)
    /// A column of ones: db = dyᵀ·1 as a matrix-vector product.
    private let ones = Buffer(count: 0)
    private var input: UnsafePointer<Float>?
    private var rows = 0

    /// In bf16 the three products (forward, input gradient, weight gradient) run on bfloat16
    /// copies of their operands with fp32 accumulation; the fp32 weights stay the master copy.
    /// The bfloat16 weights are rounded when the precision is set: call
    /// `refreshLowPrecisionWeights` after every change to the weights (an optimiser step).
    public var precision = Precision.fp32 {
        didSet { refreshLowPrecisionWeights() }
    }
    private var weightBF16: [UInt16] = []
    private let inputBF16 = BF16Buffer()
    private let gradientBF16 = BF16Buffer()
    private lazy var product = BF16Product(inputs: inputs, outputs: outputs, hasBias: bias != nil)
    private lazy var geluProduct = BF16Product(inputs: inputs, outputs: outputs, hasBias: bias != nil, gelu: true)
    private lazy var inputGradientProduct = BF16Product(inputs: outputs, outputs: inputs, transposedWeight: false, hasBias: false)
    private lazy var weightGradient = BF16WeightGradient(inputs: inputs, outputs: outputs)

    /// `weightShape` names the checkpoint layout when it is not [out, in] (a conv-style patch
    /// embedding [D, 3, P, P] is the same matrix when patches are flattened channel-first).
    public init(_ name: String, inputs: Int, outputs: Int, bias: Bool = true, weightShape: [Int]? = nil) {
        self.inputs = inputs
        self.outputs = outputs
        precondition((weightShape ?? [outputs, inputs]).reduce(1, *) == inputs * outputs, "\(name): weight shape mismatch")
        weight = Parameter(name + ".weight", shape: weightShape ?? [outputs, inputs])
        self.bias = bias ? Parameter(name + ".bias", shape: [outputs]) : nil
    }

    public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }

    /// Uses `other`'s activation memory (see `Buffer.share`); the weights stay this layer's own.
    public func shareActivations(with other: Linear) {
        for (mine, theirs) in [(output, other.output), (inputGradient, other.inputGradient), (ones, other.ones)] { mine.share(theirs) }
        inputBF16.share(other.inputBF16)
        gradientBF16.share(other.gradientBF16)
    }

    /// Re-rounds the bfloat16 weights from the fp32 master weights.
    public func refreshLowPrecisionWeights() {
        guard precision == .bf16 else { weightBF16 = []; return }
        weightBF16 = [UInt16](repeating: 0, count: weight.count)
        weightBF16.withUnsafeMutableBufferPointer { convertToBF16(weight.value.pointer, $0.baseAddress!, count: weight.count) }
    }

    /// `rows` ones, for db = dyᵀ·1 as a matrix-vector product.
    private func onesColumn() -> UnsafePointer<Float> {
        if bias != nil && ones.count < rows {
            ones.reserve(rows)
            ones.pointer.update(repeating: 1, count: rows)
        }
        return UnsafePointer(ones.pointer)
    }

    /// db += dyᵀ·1 for the output features of `band` (a thread's own entries of db).
    private func accumulateBiasGradient(_ dy: UnsafePointer<Float>, band: Range<Int>, ones: UnsafePointer<Float>) {
        guard let db = bias?.grad.pointer else { return }
        gemv(transpose: true, m: rows, n: band.count, dy + band.lowerBound, lda: outputs, ones, beta: 1, db + band.lowerBound)
    }

    /// The bf16 backward: dy rounded once, dW from dyᵀ and the forward's rounded input, dx from
    /// dy and the rounded weights; db stays an fp32 sum.
    private func backwardBF16(_ dy: UnsafePointer<Float>) throws -> UnsafeMutablePointer<Float> {
        let dy16 = gradientBF16.reserve(rows * outputs)
        convertToBF16(dy, dy16, count: rows * outputs)
        try weightGradient.accumulate(rows: rows, dy: dy16, x: inputBF16.pointer, into: weight.grad.pointer)
        if bias != nil {
            let ones = onesColumn()
            Parallel.forChunks(outputs, grain: 8, alignment: Self.tileRows) { band in accumulateBiasGradient(dy, band: band, ones: ones) }
        }
        inputGradient.reserve(rows * inputs)
        if computesInputGradient {
            try weightBF16.withUnsafeBufferPointer { w in
                try inputGradientProduct.run(rows: rows, x: dy16, weight: w.baseAddress!, bias: nil, y: inputGradient.pointer)
            }
        }
        return inputGradient.pointer
    }

    private func forwardBF16(_ x: UnsafePointer<Float>, rows: Int) throws {
        convertToBF16(x, inputBF16.reserve(rows * inputs), count: rows * inputs)
        try forwardFilled(rows: rows)
    }

    /// In bf16, the buffer a producer (LayerNorm, GELU) may write this layer's input into as
    /// bfloat16, sparing the conversion pass; then call `forwardFilled`. Nil in fp32.
    func bf16Input(rows: Int) -> UnsafeMutablePointer<UInt16>? {
        guard precision == .bf16, rows > 0 else { return nil }
        return inputBF16.reserve(rows * inputs)
    }

    /// The forward on the input written into `bf16Input(rows:)`.
    @discardableResult
    func forwardFilled(rows: Int) throws -> UnsafeMutablePointer<Float> {
        precondition(precision == .bf16, "Linear.forwardFilled needs bf16 weights")
        self.rows = rows
        input = nil
        output.reserve(rows * outputs)
        try weightBF16.withUnsafeBufferPointer { w in
            try product.run(rows: rows, x: inputBF16.pointer, weight: w.baseAddress!, bias: bias.map { UnsafePointer($0.value.pointer) },
                        y: output.pointer)
        }
        return output.pointer
    }

    /// Inference in bf16: GELU(forward) on the input written into `bf16Input(rows:)`, as
    /// bfloat16 bits into `y` (the next layer's staged input); nothing is kept for backward.
    func forwardFilledGELU(rows: Int, into y: UnsafeMutablePointer<UInt16>) throws {
        precondition(precision == .bf16, "Linear.forwardFilledGELU needs bf16 weights")
        self.rows = rows
        input = nil
        try weightBF16.withUnsafeBufferPointer { w in
            try geluProduct.runGELU(rows: rows, x: inputBF16.pointer, weight: w.baseAddress!, bias: bias.map { UnsafePointer($0.value.pointer) }, y: y)
        }
    }

    /// `x` must stay unchanged until `backward` (it is cached by reference, as in llm.c).
    @discardableResult
    public func forward(_ x: UnsafePointer<Float>, rows: Int) throws -> UnsafeMutablePointer<Float> {
        self.rows = rows
        input = x
        output.reserve(rows * outputs)
        let y = output.pointer
        if precision == .bf16, rows > 0 {
            try forwardBF16(x, rows: rows)
            input = x
            return output.pointer
        }
        let (inputs, outputs, w, b) = (inputs, outputs, weight.value.pointer, bias?.value.pointer)
        Parallel.forChunks(rows, grain: 8, alignment: Self.tileRows) { range in
            if let b {
                for r in range { (y + r * outputs).update(from: b, count: outputs) }
            }
            gemm(transposeB: true, m: range.count, n: outputs, k: inputs, x + range.lowerBound * inputs, lda: inputs, w, ldb: inputs,
                 beta: b == nil ? 0 : 1, y + range.lowerBound * outputs, ldc: outputs)
        }
        return y
    }

    /// Accumulates dW and db; returns dx (or the untouched buffer when `computesInputGradient` is off).
    @discardableResult
    public func backward(_ dy: UnsafePointer<Float>) throws -> UnsafeMutablePointer<Float> {
        if precision == .bf16, rows > 0 { return try backwardBF16(dy) }
        guard let x = input else { preconditionFailure("Linear.backward before forward") }
        let (inputs, outputs, rows, dw) = (inputs, outputs, rows, weight.grad.pointer)
        let ones = onesColumn()
        // Each thread owns a band of output features: its rows of dW and its entries of db.
        Parallel.forChunks(outputs, grain: 8, alignment: Self.tileRows) { band in
            gemm(transposeA: true, m: band.count, n: inputs, k: rows, dy + band.lowerBound, lda: outputs, x, ldb: inputs,
                 beta: 1, dw + band.lowerBound * inputs, ldc: inputs)
            accumulateBiasGradient(dy, band: band, ones: ones)
        }
        inputGradient.reserve(rows * inputs)
        if computesInputGradient {
            let (w, dx) = (weight.value.pointer, inputGradient.pointer)
            Parallel.forChunks(rows, grain: 8, alignment: Self.tileRows) { range in
                gemm(m: range.count, n: inputs, k: outputs, dy + range.lowerBound * outputs, lda: outputs, w, ldb: inputs,
                     dx + range.lowerBound * inputs, ldc: inputs)
            }
        }
        return inputGradient.pointer
    }
}
