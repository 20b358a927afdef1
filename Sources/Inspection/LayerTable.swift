import Foundation
import Network
import Tensors

/// The layer / parameter table of a model: one row per node, with its output shape at a given input size,
/// its parameters (count, shapes, trainable or frozen) and its multiply-accumulates; then totals.
public struct LayerTable: Codable {
    public struct Row: Codable {
        public var index: Int
        public var layer: String
        /// The short ordinal name (`conv3`, `pool2`) a user may type for this layer; see `LayerNames`.
        public var ordinal: String?
        public var op: String
        public var output: String
        public var outputShape: [Int]?
        public var parameters: Int
        public var parameterShapes: [String: [Int]]
        /// "yes", "no" (frozen), "partly", or "" when the layer has no parameters.
        public var trainable: String
        public var macs: Int
        /// Spatial layers only (see `ReceptiveField`; the larger axis when height and width differ): the node's own
        /// window, the cumulative stride (jump) in input pixels, and the side of the input region one position sees.
        public var kernel: Int?
        public var stride: Int?
        public var receptive_field: Int?
    }

    public var model: String
    public var inputShape: [Int]
    public var rows: [Row]
    public var totalParameters: Int
    public var trainableParameters: Int
    public var frozenParameters: Int
    public var totalMACs: Int
    /// Nodes left out of `rows`: they compute only from shapes and constants (Constant, Shape, Gather, Unsqueeze …,
    /// the arithmetic exporters write for a reshape's target shape) and own no parameters.
    public var shapeNodes: Int

    /// Runs the graph once on a zero input of `inputShape` to learn every output shape.
    public init(model: String, graph: Graph, executor: GraphExecutor, inputName: String, inputShape: [Int], frozen: Set<String>) throws {
        self.model = model
        self.inputShape = inputShape
        let shapes = try executor.valueShapes([inputName: .float(Tensor(shape: inputShape))])
        let parameters = Set(executor.parameterNames)
        let fields = ReceptiveField.compute(graph: graph, input: inputName, shapes: shapes)
        let names = LayerNames(graph: graph)
        var rows: [Row] = []
        for (i, node) in graph.nodes.enumerated() {
            let own = executor.parameterInputIndices(node: i).map { node.inputs[$0] }.filter { parameters.contains($0) }
            if own.isEmpty && executor.computesOnlyShapes(node: i) { continue }
            var shapesByName: [String: [Int]] = [:]
            for name in own { shapesByName[name] = graph.initializers[name]?.shape }
            let count = own.reduce(0) { $0 + (graph.initializers[$1]?.shape.reduce(1, *) ?? 0) }
            let frozenCount = own.filter { frozen.contains($0) }.count
            let trainable = own.isEmpty ? "" : frozenCount == 0 ? "yes" : frozenCount == own.count ? "no" : "partly"
            let outShape = shapes[node.outputs.first ?? ""]
            let field = fields[node.outputs.first ?? ""]
            rows.append(Row(index: i, layer: node.name, ordinal: names.ordinal(ofNode: i), op: node.opType, output: node.outputs.first ?? "", outputShape: outShape,
                            parameters: count, parameterShapes: shapesByName, trainable: trainable,
                            macs: outShape == nil ? 0 : executor.multiplyAccumulates(node: i, shapes: shapes),
                            kernel: field?.kernel?.max(), stride: field?.jump.max(), receptive_field: field?.size.max()))
        }
        self.rows = rows
        shapeNodes = graph.nodes.count - rows.count
        totalParameters = parameters.reduce(0) { $0 + (graph.initializers[$1]?.shape.reduce(1, *) ?? 0) }
        frozenParameters = frozen.intersection(parameters).reduce(0) { $0 + (graph.initializers[$1]?.shape.reduce(1, *) ?? 0) }
        trainableParameters = totalParameters - frozenParameters
        totalMACs = rows.reduce(0) { $0 + $1.macs }
    }

    /// A count with thousands separators: 6998552 -> "6,998,552".
    public static func grouped(_ n: Int) -> String {
        let s = String(n.magnitude)
        var out = ""
        for (i, c) in s.reversed().enumerated() {
            if i > 0 && i % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + String(out.reversed())
    }

    /// The table as aligned text, ready to paste into a report.
    public func rendered(showAll: Bool = true) -> String {
        let header = ["#", "layer", "short", "op", "output shape", "parameters", "trainable", "MMACs", "kernel", "stride", "RF"]
        var lines: [[String]] = [header]
        for row in rows where showAll || row.parameters > 0 {
            lines.append([String(row.index), row.layer, row.ordinal ?? "", row.op,
                          row.outputShape.map { "[" + $0.map(String.init).joined(separator: ",") + "]" } ?? "?",
                          row.parameters > 0 ? Self.grouped(row.parameters) : "-", row.trainable.isEmpty ? "-" : row.trainable,
                          row.macs > 0 ? String(format: "%.1f", Double(row.macs) / 1e6) : "-",
                          row.kernel.map(String.init) ?? "-", row.stride.map(String.init) ?? "-",
                          row.receptive_field.map(String.init) ?? "-"])
        }
        let widths = header.indices.map { c in lines.map { $0[c].count }.max() ?? 0 }
        let rightAligned: Set<Int> = [0, 5, 7, 8, 9, 10]
        var text = lines.enumerated().map { li, cells in
            cells.enumerated().map { c, cell in
                let pad = String(repeating: " ", count: widths[c] - cell.count)
                return rightAligned.contains(c) ? pad + cell : cell + pad
            }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
                + (li == 0 ? "\n" + widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") : "")
        }.joined(separator: "\n")
        text += "\n\nmodel: \(model)   input: [\(inputShape.map(String.init).joined(separator: ","))]\n"
        text += "parameters: \(Self.grouped(totalParameters)) total, \(Self.grouped(trainableParameters)) trainable, \(Self.grouped(frozenParameters)) frozen\n"
        text += String(format: "compute: %.2f GMACs per image at this input size", Double(totalMACs) / 1e9)
        text += "\nkernel, stride (jump) and RF (receptive field): input pixels; where branches meet, the largest"
        text += "\nshort: ordinal name for --layer (a conv followed by a ReLU: the ReLU's output)"
        if shapeNodes > 0 {
            text += "\nnot listed: \(shapeNodes) nodes that compute only shapes and constants (Shape, Gather, Constant …)"
        }
        return text
    }
}
