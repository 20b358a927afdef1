import Foundation

/// Errors of graph preparation and execution; each message is one line a user can act on.
public enum ExecutionError: Error, CustomStringConvertible, LocalizedError, Equatable {
    case unsupportedOperator(op: String, node: String, domain: String)
    case badAttribute(node: String, op: String, attribute: String, expected: String)
    case unsupportedAttribute(node: String, op: String, detail: String)
    case missingInput(op: String, index: Int)
    case missingFeed(name: String)
    case unknownValue(name: String, suggestions: [String])
    case shapeMismatch(node: String, op: String, detail: String)
    case notDifferentiable(node: String, op: String)
    /// A backward pass found no record of what its forward saved: a bug in the engine, reported rather than ignored.
    case missingSavedValue(node: String, op: String)
    /// A gradient was seeded on a value that a fused step computed inside itself.
    case fusedValue(name: String)

    public var description: String {
        switch self {
        case let .unsupportedOperator(op, node, domain):
            return "unsupported operator \(domain.isEmpty ? "" : domain + ".")\(op) (node '\(node)')"
        case let .badAttribute(node, op, attribute, expected):
            return "node '\(node)' (\(op)): attribute '\(attribute)' should be \(expected)"
        case let .unsupportedAttribute(node, op, detail):
            return "node '\(node)' (\(op)): \(detail) is not supported"
        case let .missingInput(op, index):
            return "\(op): required input #\(index) is missing"
        case let .missingFeed(name):
            return "the graph input '\(name)' was not given a value"
        case let .unknownValue(name, suggestions):
            return "no layer or value named '\(name)'" + (suggestions.isEmpty ? "" : "; did you mean: \(suggestions.joined(separator: ", "))?")
        case let .shapeMismatch(node, op, detail):
            return "node '\(node)' (\(op)): \(detail)"
        case let .notDifferentiable(node, op):
            return "node '\(node)' (\(op)) has no gradient"
        case let .missingSavedValue(node, op):
            return "node '\(node)' (\(op)): the backward pass is missing what the forward pass saved (an engine bug)"
        case let .fusedValue(name):
            return "the value '\(name)' was fused into the layer after it in this forward pass; request it as an output to put a gradient on it"
        }
    }

    public var errorDescription: String? { description }
}
