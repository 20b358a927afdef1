import Foundation
import Parallel

/// Winograd convolution (Lavin & Gray, 2016) for 3x3, stride-1, undilated, ungrouped convolutions: the output is
/// computed in s x s tiles (s = 2: F(2x2,3x3), 4x4 input tiles; s = 4: F(4x4,3x3), 6x6 input tiles) as
///     y_tile = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A
/// so that each tile takes (s+2)² multiplications per channel pair instead of 9 s²: 2.25x fewer for s = 2, 4x fewer for
/// s = 4. The sum over channels at each of the (s+2)² tile positions is one GEMM: U[pos] [O x I] · V[pos] [I x tiles].
///
/// Work is done in blocks of tile rows (a fixed partition of the map, from its shape alone): input transform of the
/// block into V [pos][I][tiles], the (s+2)² single-threaded GEMMs into Mo [pos][O][tiles], and the output transform
/// with bias and epilogue straight into y. Large maps run whole blocks on each thread (the block's V and Mo stay in
/// cache); maps of one or a few blocks split each phase over threads instead. The block partition and the GEMM shapes
/// do not depend on the thread count, so neither do the results.
///
/// The same code computes a convolution's data gradient, which is itself a stride-1 3x3 correlation: of dy with the
/// flipped kernel, channels transposed, and the complementary padding (`inputGradient`).
enum WinogradConvolution {
    /// Output tile size: F(2x2,3x3) or F(4x4,3x3).
    enum Variant: Sendable {
        case f2, f4
        var tile: Int { self == .f2 ? 2 : 4 }
        var size: Int { tile + 2 }
        var positions: Int { size * size }
    }

    /// Whether Winograd can compute this convolution: 3x3, stride 1, dilation 1, one group (any padding).
    static func handles(_ g: Convolution.Geometry) -> Bool {
        let w = g.window
        return g.groups == 1 && w.kernelH == 3 && w.kernelW == 3 && w.strideH == 1 && w.strideW == 1
            && w.dilationH == 1 && w.dilationW == 1 && g.c > 0 && g.m > 0 && g.outH > 0 && g.outW > 0
    }

    // MARK: - The correlation both directions compute

    /// y[b][o][oy][ox] = bias[o] + Σ_i Σ_{a,b<3} k[o][i][a][b] · x[b][i][oy + a - top][ox + b - left] (zero outside x),
    /// for x [n, inputs, h, w] -> y [n, outputs, outH, outW].
    struct Problem {
        let n: Int, inputs: Int, outputs: Int, h: Int, w: Int, outH: Int, outW: Int, top: Int, left: Int
        let variant: Variant
        var tile: Int { variant.tile }
        var tilesH: Int { (outH + tile - 1) / tile }
        var tilesW: Int { (outW + tile - 1) / tile }
        /// Length of one deinterleaved row plane: tile columns rounded up to the vector width, plus the one column
        /// the last tile's right edge reads.
        var planeLength: Int { (tilesW + 7) / 8 * 8 + 1 }
    }

    /// Tile rows per block: enough tiles for the GEMMs to run near their peak (each block streams all of U once, so
    /// the GEMMs do tiles/2 flops per byte of U), few enough that a block's V and Mo (positions · (I + O) · tiles
    /// floats) stay within about 4 MB; then evened out over the blocks of a map. Measured single-threaded on GoogLeNet's
    /// shapes: 16–64 tiles per block costs up to 30 % more than 32–128, 64–256 gains nothing.
    static func rowsPerBlock(_ p: Problem) -> Int {
        let perTile = p.variant.positions * (p.inputs + p.outputs)
        let tiles = max(32, min(128, (1 << 20) / max(1, perTile)))
        let rows = max(1, min(p.tilesH, tiles / p.tilesW))
        let blocks = (p.tilesH + rows - 1) / rows
        return (p.tilesH + blocks - 1) / blocks
    }

    // MARK: - Transforms (Lavin & Gray's matrices; every one maps correlation, as CNNs compute it)

    /// G g on three values (a column or row of a 3x3 kernel) -> `size` values.
    @inline(__always)
    static func weightTransform(_ v: Variant, _ g0: Vec, _ g1: Vec, _ g2: Vec, into out: UnsafeMutablePointer<Float>, stride: Int) {
        if v == .f4 {
            let sixth: Float = 1.0 / 6, twelfth: Float = 1.0 / 12, quarter: Float = 0.25
            let even = g0 + g2, evenSmall = g0 * quarter + g2
            store(g0 * quarter, out)
            store(-sixth * (even + g1), out + stride)
            store(-sixth * (even - g1), out + 2 * stride)
            store(sixth * (evenSmall + g1 * 0.5), out + 3 * stride)
            store(sixth * (evenSmall - g1 * 0.5), out + 4 * stride)
            store(g2, out + 5 * stride)
        } else {
            let half: Float = 0.5, even = g0 + g2
            store(g0, out); store(half * (even + g1), out + stride); store(half * (even - g1), out + 2 * stride); store(g2, out + 3 * stride)
        }
    }

    /// weight [M, C, 3, 3] -> U [positions][M·C]: U[pos][m·C + c] = (G g_mc Gᵀ)[pos], eight input channels at a time.
    /// `flipped` reads each kernel rotated by 180° (the data gradient's). Threads split the output channels.
    static func transformWeights(_ v: Variant, weight: UnsafePointer<Float>, m: Int, c: Int, flipped: Bool,
                                 into u: UnsafeMutablePointer<Float>) {
        let size = v.size, pairs = m * c
        parallelRanges(m, work: pairs * v.positions, minimumWorkPerThread: 1 << 18) { filters in
            // taps [9][8], then G g [size][3][8] (columns first), then one lane-block of U rows [size·size][8].
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: (9 + 3 * size + size * size) * 8)
            defer { buffer.deallocate() }
            let taps = buffer, half = buffer + 72, full = half + 24 * size
            for filter in filters {
                for c0 in stride(from: 0, to: c, by: 8) {
                    let lanes = min(8, c - c0)
                    for lane in 0..<8 {
                        let kernel = weight + (filter * c + c0 + lane) * 9
                        for t in 0..<9 { taps[t * 8 + lane] = lane < lanes ? kernel[flipped ? 8 - t : t] : 0 }
                    }
                    // Columns b: half[a][b] = (G g)[a][b]; rows a: full[a][q] = (G g Gᵀ)[a][q].
                    for b in 0..<3 {
                        weightTransform(v, load(taps + 8 * b), load(taps + 8 * (3 + b)), load(taps + 8 * (6 + b)),
                                        into: half + 8 * b, stride: 24)
                    }
                    for a in 0..<size {
                        let row = UnsafePointer(half + 24 * a)
                        weightTransform(v, load(row), load(row + 8), load(row + 16), into: full + 8 * size * a, stride: 8)
                    }
                    let dst = u + filter * c + c0
                    for pos in 0..<v.positions {
                        if lanes == 8 { store(load(full + 8 * pos), dst + pos * pairs) } else {
                            for lane in 0..<lanes { dst[pos * pairs + lane] = full[8 * pos + lane] }
                        }
                    }
                }
            }
        }
    }

    typealias Vec = SIMD8<Float>

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> Vec { UnsafeRawPointer(p).loadUnaligned(as: Vec.self) }
    @inline(__always) static func store(_ v: Vec, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec.self)
    }

    /// Bᵀ d for F(4x4,3x3) on six values (rows or columns of a 6x6 tile).
    @inline(__always)
    static func inputTransform6(_ d: (Vec, Vec, Vec, Vec, Vec, Vec)) -> (Vec, Vec, Vec, Vec, Vec, Vec) {
        let (d0, d1, d2, d3, d4, d5) = d
        let four: Float = 4, five: Float = 5, two: Float = 2
        let a = d4 - d2, b = two * (d3 - d1)
        return (four * d0 - five * d2 + d4,
                (d4 + d3) - four * (d1 + d2),
                (d4 - d3) + four * (d1 - d2),
                a + b,
                a - b,
                four * d1 - five * d3 + d5)
    }

    /// Bᵀ d for F(2x2,3x3) on four values.
    @inline(__always)
    static func inputTransform4(_ d: (Vec, Vec, Vec, Vec)) -> (Vec, Vec, Vec, Vec) {
        (d.0 - d.2, d.1 + d.2, d.2 - d.1, d.1 - d.3)
    }

    /// Aᵀ m for F(4x4,3x3): six transformed values -> four outputs.
    @inline(__always)
    static func outputTransform6(_ m: (Vec, Vec, Vec, Vec, Vec, Vec)) -> (Vec, Vec, Vec, Vec) {
        let (m0, m1, m2, m3, m4, m5) = m
        let s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4
        let two: Float = 2, four: Float = 4, eight: Float = 8
        return (m0 + s12 + s34, d12 + two * d34, s12 + four * s34, d12 + eight * d34 + m5)
    }

    /// Aᵀ m for F(2x2,3x3): four transformed values -> two outputs.
    @inline(__always)
    static func outputTransform4(_ m: (Vec, Vec, Vec, Vec)) -> (Vec, Vec) {
        (m.0 + m.1 + m.2, m.1 - m.2 - m.3)
    }

    // MARK: - Block phases

    /// The scratch of one block: V [pos][I][ld], Mo [pos][O][ld] (possibly shared by the threads of a block), and per
    /// thread the deinterleaved input rows of one channel, the output rows of one tile row and one tile's vectors.
    struct Scratch {
        var v: UnsafeMutablePointer<Float>, mo: UnsafeMutablePointer<Float>
        var planes: UnsafeMutablePointer<Float>, rows: UnsafeMutablePointer<Float>, temp: UnsafeMutablePointer<Float>
        /// Leading dimension of V and Mo: the block's tiles plus the vector overhang of its last tile row.
        let ld: Int

        static func ld(_ p: Problem, rowsPerBlock: Int) -> Int { rowsPerBlock * p.tilesW + 8 }
        /// Floats of V and Mo together.
        static func sharedFloats(_ p: Problem, rowsPerBlock: Int) -> Int {
            p.variant.positions * (p.inputs + p.outputs) * ld(p, rowsPerBlock: rowsPerBlock)
        }
        /// Floats of the per-thread buffers.
        static func privateFloats(_ p: Problem, rowsPerBlock: Int) -> Int {
            (rowsPerBlock * p.tile + 2) * p.tile * p.planeLength + p.tile * p.tile * p.planeLength + 36 * 8
        }

        init(_ p: Problem, rowsPerBlock: Int, shared: UnsafeMutablePointer<Float>, private own: UnsafeMutablePointer<Float>) {
            ld = Self.ld(p, rowsPerBlock: rowsPerBlock)
            v = shared
            mo = shared + p.variant.positions * p.inputs * ld
            temp = own
            rows = own + 36 * 8
            planes = rows + p.tile * p.tile * p.planeLength
        }
    }

    /// Input transform of channels `channels` of image `image`, tile rows `tileRows`: V[pos][i][local tile].
    /// Each channel's rows are first copied, zero-padded, into `tile` planes of every tile-th column (plane r holds
    /// columns q·tile + r), so that tile column tj's input column l is plane l % tile at index tj + l / tile and eight
    /// neighbouring tiles load as one vector.
    static func transformInput(_ p: Problem, x: UnsafePointer<Float>, image: Int, tileRows: Range<Int>, channels: Range<Int>,
                               scratch s: Scratch) {
        let tile = p.tile, len = p.planeLength, tilesW = p.tilesW
        let shift = tile == 2 ? 1 : 2, mask = tile - 1
        let rowCount = tileRows.count * tile + 2, firstRow = tileRows.lowerBound * tile - p.top
        // Input columns that land in the planes: column ix goes to padded column ix + left.
        let columns = max(0, -p.left)..<max(max(0, -p.left), min(p.w, tile * len - p.left))
        let stride = p.inputs * s.ld, t = s.temp
        for channel in channels {
            let src = x + (image * p.inputs + channel) * p.h * p.w
            for row in 0..<rowCount {
                let dst = s.planes + row * tile * len
                dst.update(repeating: 0, count: tile * len)
                let iy = firstRow + row
                if iy < 0 || iy >= p.h { continue }
                let line = src + iy * p.w
                for ix in columns {
                    let col = ix + p.left
                    dst[(col & mask) * len + col >> shift] = line[ix]
                }
            }
            let vc = s.v + channel * s.ld
            for localRow in 0..<tileRows.count {
                let base = UnsafePointer(s.planes + localRow * tile * tile * len)
                let out = vc + localRow * tilesW
                var tj = 0
                while tj < tilesW {
                    // Input row j, column l of eight neighbouring tiles.
                    @inline(__always) func d(_ j: Int, _ l: Int) -> Vec { load(base + (j * tile + (l & mask)) * len + tj + l >> shift) }
                    if p.variant == .f4 {
                        // Columns first (t = Bᵀ d, kept in temp as t[k][l]), then rows (v = t B).
                        for l in 0..<6 {
                            let c = inputTransform6((d(0, l), d(1, l), d(2, l), d(3, l), d(4, l), d(5, l)))
                            store(c.0, t + 8 * l); store(c.1, t + 8 * (6 + l)); store(c.2, t + 8 * (12 + l))
                            store(c.3, t + 8 * (18 + l)); store(c.4, t + 8 * (24 + l)); store(c.5, t + 8 * (30 + l))
                        }
                        for k in 0..<6 {
                            let row = UnsafePointer(t + 48 * k)
                            let r = inputTransform6((load(row), load(row + 8), load(row + 16), load(row + 24), load(row + 32), load(row + 40)))
                            let o = out + tj + (6 * k) * stride
                            store(r.0, o); store(r.1, o + stride); store(r.2, o + 2 * stride)
                            store(r.3, o + 3 * stride); store(r.4, o + 4 * stride); store(r.5, o + 5 * stride)
                        }
                    } else {
                        for l in 0..<4 {
                            let c = inputTransform4((d(0, l), d(1, l), d(2, l), d(3, l)))
                            store(c.0, t + 8 * l); store(c.1, t + 8 * (4 + l)); store(c.2, t + 8 * (8 + l)); store(c.3, t + 8 * (12 + l))
                        }
                        for k in 0..<4 {
                            let row = UnsafePointer(t + 32 * k)
                            let r = inputTransform4((load(row), load(row + 8), load(row + 16), load(row + 24)))
                            let o = out + tj + (4 * k) * stride
                            store(r.0, o); store(r.1, o + stride); store(r.2, o + 2 * stride); store(r.3, o + 3 * stride)
                        }
                    }
                    tj += 8
                }
            }
        }
    }

    /// Mo[pos] [O x tiles] = U[pos] [O x I] · V[pos] [I x tiles] for the positions given, one single-threaded GEMM each.
    /// U is stored [pos][O·I] row-major, or [pos][I·O] (`transposedU`, the data gradient's channel-transposed kernel).
    static func multiply(_ p: Problem, u: UnsafePointer<Float>, transposedU: Bool, tiles: Int, positions: Range<Int>,
                         scratch s: Scratch) {
        let pairs = p.inputs * p.outputs
        for pos in positions {
            PointwiseConvolution.gemm(transA: transposedU, transB: false, m: p.outputs, n: tiles, k: p.inputs,
                                      a: u + pos * pairs, lda: transposedU ? p.outputs : p.inputs,
                                      b: s.v + pos * p.inputs * s.ld, ldb: s.ld, beta: 0,
                                      c: s.mo + pos * p.outputs * s.ld, ldc: s.ld)
        }
    }

    /// Output transform of output channels `outputs`: y = Aᵀ Mo A + bias, then the epilogue, row by row.
    static func transformOutput(_ p: Problem, image: Int, tileRows: Range<Int>, outputs: Range<Int>,
                                bias: UnsafePointer<Float>?, epilogue: Activation?, y: UnsafeMutablePointer<Float>,
                                scratch s: Scratch) {
        let tile = p.tile, len = p.planeLength, tilesW = p.tilesW, size = p.variant.size
        let shift = tile == 2 ? 1 : 2, mask = tile - 1
        let stride = p.outputs * s.ld, t = s.temp
        for channel in outputs {
            let b = bias?[channel] ?? 0
            let plane = y + (image * p.outputs + channel) * p.outH * p.outW
            for (localRow, tileRow) in tileRows.enumerated() {
                let src = UnsafePointer(s.mo + channel * s.ld + localRow * tilesW)
                var tj = 0
                while tj < tilesW {
                    // Transformed value (k, q) of eight neighbouring tiles.
                    @inline(__always) func m(_ k: Int, _ q: Int) -> Vec { load(src + (k * size + q) * stride + tj) }
                    if p.variant == .f4 {
                        // Columns first (z = Aᵀ m, in temp as z[r][q]), then rows (out = z A) into the row planes.
                        for q in 0..<6 {
                            let c = outputTransform6((m(0, q), m(1, q), m(2, q), m(3, q), m(4, q), m(5, q)))
                            store(c.0, t + 8 * q); store(c.1, t + 8 * (6 + q)); store(c.2, t + 8 * (12 + q)); store(c.3, t + 8 * (18 + q))
                        }
                        for r in 0..<4 {
                            let row = UnsafePointer(t + 48 * r)
                            let o = outputTransform6((load(row), load(row + 8), load(row + 16), load(row + 24), load(row + 32), load(row + 40)))
                            let dst = s.rows + r * 4 * len + tj
                            store(o.0, dst); store(o.1, dst + len); store(o.2, dst + 2 * len); store(o.3, dst + 3 * len)
                        }
                    } else {
                        for q in 0..<4 {
                            let c = outputTransform4((m(0, q), m(1, q), m(2, q), m(3, q)))
                            store(c.0, t + 8 * q); store(c.1, t + 8 * (4 + q))
                        }
                        for r in 0..<2 {
                            let row = UnsafePointer(t + 32 * r)
                            let o = outputTransform4((load(row), load(row + 8), load(row + 16), load(row + 24)))
                            let dst = s.rows + r * 2 * len + tj
                            store(o.0, dst); store(o.1, dst + len)
                        }
                    }
                    tj += 8
                }
                // Interleave the row planes into the output rows (column ox is plane ox % tile at ox / tile).
                for r in 0..<tile {
                    let oy = tileRow * tile + r
                    if oy >= p.outH { break }
                    let dst = plane + oy * p.outW, planes = s.rows + r * tile * len
                    for ox in 0..<p.outW { dst[ox] = planes[(ox & mask) * len + ox >> shift] + b }
                    epilogue?.forward(UnsafePointer(dst), dst, 0..<p.outW)
                }
            }
        }
    }

    // MARK: - Driver

    /// Runs the correlation `p` of kernel `weight` [M,C,3,3] (`flipped` and transposed for the data gradient): the
    /// weight transform, then whole blocks per thread when they split evenly enough, otherwise each block's three
    /// phases split over the threads (one sync per phase). All scratch (U, and V, Mo and the row buffers of each
    /// worker) is one buffer from the pool, as the im2col path's is, so that the pool keeps one size per call.
    /// `transformed`: U as `transformWeights` makes it (from a `WinogradWeightCache`), or nil to transform here.
    static func run(_ p: Problem, x: UnsafePointer<Float>, weight: UnsafePointer<Float>, flipped: Bool,
                    bias: UnsafePointer<Float>?, epilogue: Activation?, y: UnsafeMutablePointer<Float>,
                    transformed: UnsafePointer<Float>? = nil) {
        let rpb = rowsPerBlock(p)
        let blocksPerImage = (p.tilesH + rpb - 1) / rpb, blocks = p.n * blocksPerImage
        let sharedFloats = Scratch.sharedFloats(p, rowsPerBlock: rpb), privateFloats = Scratch.privateFloats(p, rowsPerBlock: rpb)
        let threads = Threading.threadCount
        // Whole blocks per thread when that keeps the threads at least 80 % busy (2 blocks on 2 threads: yes, 3: no).
        let rounds = (blocks + threads - 1) / threads
        let wholeBlocks = threads == 1 || 5 * blocks >= 4 * rounds * threads
        let workers = max(1, min(threads, wholeBlocks ? blocks : threads))
        let uFloats = transformed == nil ? p.variant.positions * p.inputs * p.outputs : 0
        let buffer = ScratchPool.take(uFloats + (wholeBlocks ? workers : 1) * sharedFloats + workers * privateFloats)
        defer { ScratchPool.give(buffer) }
        let sharedBase = buffer.pointer + uFloats
        let privateBase = sharedBase + (wholeBlocks ? workers : 1) * sharedFloats
        let u: UnsafePointer<Float>
        if let transformed {
            u = transformed
        } else {
            transformWeights(p.variant, weight: weight, m: flipped ? p.inputs : p.outputs, c: flipped ? p.outputs : p.inputs,
                             flipped: flipped, into: buffer.pointer)
            u = UnsafePointer(buffer.pointer)
        }
        let transposedU = flipped
        @inline(__always) func rows(_ block: Int) -> (image: Int, rows: Range<Int>) {
            let first = (block % blocksPerImage) * rpb
            return (block / blocksPerImage, first..<min(p.tilesH, first + rpb))
        }
        BLASThreads.useSingleThread()
        if wholeBlocks {
            parallelFor(workers) { worker in
                let s = Scratch(p, rowsPerBlock: rpb, shared: sharedBase + worker * sharedFloats,
                                private: privateBase + worker * privateFloats)
                for block in (blocks * worker / workers)..<(blocks * (worker + 1) / workers) {
                    let (image, tileRows) = rows(block)
                    transformInput(p, x: x, image: image, tileRows: tileRows, channels: 0..<p.inputs, scratch: s)
                    multiply(p, u: u, transposedU: transposedU, tiles: tileRows.count * p.tilesW,
                             positions: 0..<p.variant.positions, scratch: s)
                    transformOutput(p, image: image, tileRows: tileRows, outputs: 0..<p.outputs, bias: bias,
                                    epilogue: epilogue, y: y, scratch: s)
                }
            }
        } else {
            func split(_ count: Int, _ body: (Range<Int>, Scratch) -> Void) {
                let parts = min(workers, count)
                parallelFor(parts) { w in
                    body((count * w / parts)..<(count * (w + 1) / parts),
                         Scratch(p, rowsPerBlock: rpb, shared: sharedBase, private: privateBase + w * privateFloats))
                }
            }
            for block in 0..<blocks {
                let (image, tileRows) = rows(block)
                split(p.inputs) { channels, s in
                    transformInput(p, x: x, image: image, tileRows: tileRows, channels: channels, scratch: s)
                }
                split(p.variant.positions) { positions, s in
                    multiply(p, u: u, transposedU: transposedU, tiles: tileRows.count * p.tilesW, positions: positions, scratch: s)
                }
                split(p.outputs) { outputs, s in
                    transformOutput(p, image: image, tileRows: tileRows, outputs: outputs, bias: bias, epilogue: epilogue,
                                    y: y, scratch: s)
                }
            }
        }
    }

    /// x [N,C,H,W], weight [M,C,3,3], bias [M]? -> y [N,M,OH,OW] = epilogue(conv(x) + bias)
    /// `cache`: the transformed kernel is taken from it (made on first use) instead of computed per call.
    static func forward(_ g: Convolution.Geometry, variant: Variant, x: UnsafePointer<Float>, weight: Tensor,
                        bias: UnsafePointer<Float>?, epilogue: Activation?, y: UnsafeMutablePointer<Float>,
                        cache: WinogradWeightCache? = nil) {
        let p = Problem(n: g.n, inputs: g.c, outputs: g.m, h: g.h, w: g.w, outH: g.outH, outW: g.outW,
                        top: g.window.padTop, left: g.window.padLeft, variant: variant)
        let u = cache?.transformed(weight, variant: variant, flipped: false, m: g.m, c: g.c)
        withExtendedLifetime(u) {
            run(p, x: x, weight: weight.storage.pointer, flipped: false, bias: bias, epilogue: epilogue, y: y,
                transformed: u.map { UnsafePointer($0.storage.pointer) })
        }
    }

    /// dy [N,M,OH,OW], weight [M,C,3,3] -> dx [N,C,H,W] (overwritten): dx[c][iy][ix] = Σ_m Σ_{a,b} dy[m][iy + a - (2 - top)]
    /// [ix + b - (2 - left)] · w[m][c][2 - a][2 - b], the correlation of dy with the flipped, transposed kernel.
    static func inputGradient(_ g: Convolution.Geometry, variant: Variant, dy: UnsafePointer<Float>, weight: Tensor,
                              dx: UnsafeMutablePointer<Float>, cache: WinogradWeightCache? = nil) {
        let p = Problem(n: g.n, inputs: g.m, outputs: g.c, h: g.outH, w: g.outW, outH: g.h, outW: g.w,
                        top: 2 - g.window.padTop, left: 2 - g.window.padLeft, variant: variant)
        // The data gradient's kernel is the forward one's [inputs][outputs], flipped (`run`).
        let u = cache?.transformed(weight, variant: variant, flipped: true, m: g.c, c: g.m)
        withExtendedLifetime(u) {
            run(p, x: dy, weight: weight.storage.pointer, flipped: true, bias: nil, epilogue: nil, y: dx,
                transformed: u.map { UnsafePointer($0.storage.pointer) })
        }
    }
}

/// The Winograd-transformed kernels of one convolution layer (U = G g Gᵀ of every filter, for the forward pass and
/// for the data gradient), made on first use and reused by later calls. In a dream the weights never change and every
/// step transforms them twice (forward and data gradient) per tile; with the cache that happens once per executor.
///
/// An entry is keyed by the weight tensor's storage (its identity, not its address), the variant and the direction;
/// a call with any other weight tensor replaces it. The entry keeps that storage alive, so it cannot be modified in
/// place behind the cache's back: a write through `Tensor`'s API copies storage that is shared, and the cache is one
/// of the sharers. Stale transforms are therefore impossible, and the cache costs memory only: (s+2)² / 9 times the
/// weights per direction (4x for F(4,3), 1.8x for F(2,3)), which is why the executor uses it only for frozen weights
/// of passes with a backward (see `GraphExecutor`).
public final class WinogradWeightCache: @unchecked Sendable {
    private struct Entry {
        let weight: TensorStorage
        let variant: WinogradConvolution.Variant
        let transformed: Tensor
    }
    private let lock = NSLock()
    /// [0]: forward, [1]: data gradient.
    private var entries: [Entry?] = [nil, nil]
    /// How many transforms were computed (tests: a second call with the same weights computes none).
    public private(set) var transformsComputed = 0

    public init() {}

    /// Floats held by the transforms.
    public var floats: Int {
        lock.lock(); defer { lock.unlock() }
        return entries.reduce(0) { $0 + ($1?.transformed.count ?? 0) }
    }

    /// U for `weight` [m, c, 3, 3] (m filters of c channels as `transformWeights` reads them), from the cache or made now.
    /// Returned as a tensor so that the caller holds it while it runs, even if another call replaces the entry.
    func transformed(_ weight: Tensor, variant: WinogradConvolution.Variant, flipped: Bool, m: Int, c: Int) -> Tensor {
        let slot = flipped ? 1 : 0
        lock.lock()
        if let entry = entries[slot], entry.weight === weight.storage, entry.variant == variant {
            lock.unlock()
            return entry.transformed
        }
        lock.unlock()
        let u = Tensor(shape: [variant.positions * m * c]) { _ in }
        WinogradConvolution.transformWeights(variant, weight: weight.storage.pointer, m: m, c: c, flipped: flipped,
                                             into: u.storage.pointer)
        lock.lock()
        entries[slot] = Entry(weight: weight.storage, variant: variant, transformed: u)
        transformsComputed += 1
        lock.unlock()
        return u
    }
}

extension WinogradConvolution {
    // MARK: - Where Winograd pays (from the shape alone)

    /// The variant for a layer of this shape, or nil where the GEMM path is faster or Winograd would not be accurate
    /// enough. Winograd saves GEMM work in proportion to C·M·tiles, and costs transforms in proportion to (C+M)·tiles
    /// plus a weight transform and a stream of U (positions·C·M floats) per call that only enough tiles amortise.
    /// Measured single-threaded (CPU time, 15 runs, min) on the 3x3 layers of GoogLeNet and SqueezeNet 1.1 at 224 and
    /// 512 px (2-core AMD EPYC, OpenBLAS Zen kernels), time relative to the GEMM path:
    /// - F(4,3) from 6x6 tiles of 4 (maps of 21 and more): 0.53 (64→192, 56²), 0.57 (128→192, 28²), 0.84 (32→128,
    ///   27²), 0.69 (48→192, 31²), 0.68 (160→320, 32²); but 1.16 at 16² and 1.3–2 below; with C = 16 (SqueezeNet's
    ///   fire2/3, C·M/(C+M) = 13) 0.98–1.03, no gain.
    /// - F(2,3) from 7x7 tiles of 2 (maps of 13 and more): 0.83 (112→224, 14²), 0.92 (160→320, 16²), but 1.21 for
    ///   48→192 at 13² (C·M/(C+M) = 38), 1.13 for 64→256 at 13² (51), 1.9 at 7².
    /// Where neither pays, the implicit GEMM (`Convolution.packedPays`) usually takes the layer: DenseNet's 128→32 at
    /// 14² (C·M/(C+M) = 25) runs there in 0.140 ms against F(2,3)'s 0.169 and the im2col GEMM's 0.197 (2 threads).
    static func variant(for g: Convolution.Geometry) -> Variant? {
        guard handles(g) else { return nil }
        let harmonic = g.c * g.m / (g.c + g.m)
        let tiles4 = ((g.outH + 3) / 4) * ((g.outW + 3) / 4), tiles2 = ((g.outH + 1) / 2) * ((g.outW + 1) / 2)
        if tiles4 >= 36 && harmonic >= 20 && accurate(.f4, accumulating: g.c) { return .f4 }
        if tiles2 >= 49 && harmonic >= 64 && accurate(.f2, accumulating: g.c) { return .f2 }
        return nil
    }

    /// The variant for the data gradient of a layer that runs `forward`: the same, if its error bound allows the sum
    /// over the M output channels that dx accumulates, else F(2,3) if that is accurate enough, else nil (GEMM path).
    static func inputGradientVariant(_ g: Convolution.Geometry, forward: Variant) -> Variant? {
        if accurate(forward, accumulating: g.m) { return forward }
        return accurate(.f2, accumulating: g.m) ? .f2 : nil
    }

    // MARK: - The error rule

    /// Float32 error of Winograd against the exact convolution, and when it is too large.
    ///
    /// Each output is Aᵀ [Σ_c (G g Gᵀ) ⊙ (Bᵀ d B)] A: exact in real arithmetic, but the roundings of the transformed
    /// kernel, of the transformed input and of the GEMM's sum reach the output through the transform coefficients
    /// instead of with weight 1. Summing |Aᵀ| |G| |Bᵀ| along every path, an output of F(2,3) gathers at most 2.67² =
    /// 7.1 times the absolute weight of a direct 3x3 sum, one of F(4,3) up to 16² = 256 times (its corner output: Aᵀ's
    /// last row is 1, -1, 8, -8, 1 and Bᵀ's entries reach 5); in the root-mean-square sense (independent roundings)
    /// the factors are 1.7 and 31. Measured, the amplification is far smaller than either bound: on the real 3x3 layers
    /// of GoogLeNet and SqueezeNet 1.1 with the activations of the 12 shared photos (`WinogradAccuracyTests`), relative
    /// L2 error against float64 is 1.0–3.8e-7 for the GEMM path, 1.3–2.5e-7 for F(2,3) and 3.3e-7–1.5e-6 for F(4,3);
    /// max-abs error relative to the output's largest value up to 8.3e-7, 5.9e-7 and 6.4e-6; the data gradient's
    /// (through the same path) 0.6–0.9e-7, 1.0–2.1e-7 and 2.2–9.5e-7.
    ///
    /// The error grows with the number of channels K a GEMM sums (C forward, M for dx) only slowly: with post-ReLU
    /// inputs and zero-mean weights, F(4,3) measures 8.2e-7 at K = 16, 2.2e-6 at K = 256 and 3.3e-6 at K = 16384
    /// (about K^0.2); F(2,3) 1.3e-7 to 3.7e-7. The rule takes the worst error measured anywhere (real layers included)
    /// as if it were the error at K = 16, grows it by the steeper random-walk law, error(K) = error(16) · sqrt(K / 16),
    /// and keeps a safety factor of 4 below the 1e-4 budget: F(4,3) up to K = 4,444 channels, F(2,3) up to 160,000.
    /// Beyond, a layer falls back (F(4,3) -> F(2,3) -> GEMM). No layer of the shared models, VGG or ResNet (at most
    /// 512 channels into a 3x3) comes near; the rule depends on the shape alone, so a layer always runs the same code.
    static let errorBudget = 1e-4
    static let errorSafetyFactor = 4.0

    /// The worst relative L2 error measured for the variant (real layers and synthetic sums up to K = 256).
    static func measuredError(_ v: Variant) -> Double { v == .f4 ? 1.5e-6 : 2.5e-7 }

    /// The bound on the relative L2 error of variant v summing K channels.
    static func predictedError(_ v: Variant, accumulating k: Int) -> Double {
        measuredError(v) * (Double(max(k, 16)) / 16).squareRoot()
    }

    /// Whether variant v keeps within the error budget when its GEMMs sum K channels.
    static func accurate(_ v: Variant, accumulating k: Int) -> Bool {
        errorSafetyFactor * predictedError(v, accumulating: k) <= errorBudget
    }
}
