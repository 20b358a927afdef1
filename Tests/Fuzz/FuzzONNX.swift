import Foundation
import Network
import Tensors

/// Any bytes as an ONNX model: import, build every operator (attribute checks), then run a forward pass on a small
/// input for each graph input. Everything must end in a thrown error or a result, never a crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzONNX(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    TensorLimits.maxElements = 1 << 22  // keep single executions fast and small
    guard let graph = try? ONNXImporter.graph(fromSerialized: Data(bytes: start, count: count), baseDirectory: nil),
          graph.nodes.count <= 64,
          let executor = try? GraphExecutor(graph: graph) else { return 0 }
    var feeds: [String: Value] = [:]
    for input in graph.inputs {
        var shape = (input.shape ?? [1, 3, 8, 8]).map { $0 ?? 8 }
        if (checkedProduct(shape) ?? .max) > 4096 { shape = [1, 3, 8, 8] }
        feeds[input.name] = .float(Tensor.random(shape: shape, in: -2...2, seed: 1))
    }
    _ = try? executor.run(feeds, outputs: graph.outputs.map(\.name))
    return 0
}

private func checkedProduct(_ shape: [Int]) -> Int? {
    var n = 1
    for d in shape {
        guard d >= 0 else { return nil }
        let (p, o) = n.multipliedReportingOverflow(by: d)
        if o { return nil }
        n = p
    }
    return n
}
