import Foundation

/// Why a dream cannot run; each message is one line a user can act on.
public enum DreamError: Error, CustomStringConvertible, LocalizedError, Equatable {
    /// The image is smaller than the least the dream layers need to have a few pixels of output.
    case imageTooSmall(width: Int, height: Int, minimumSide: Int, layer: String)
    /// A channel the dream layer does not have.
    case channelOutOfRange(layer: String, channel: Int, channels: Int)
    /// A --layer value that does not parse as layer[:weight[:channels]].
    case badLayerSpec(spec: String, problem: String)

    public var description: String {
        switch self {
        case let .imageTooSmall(width, height, minimumSide, layer):
            return "the image (\(width)x\(height)) is smaller than \(minimumSide) px, the least \(layer) needs: use a larger image or an earlier layer"
        case let .channelOutOfRange(layer, channel, channels):
            let range = channels > 0 ? "\(channels) channels (0…\(channels - 1))" : "no channels"
            return "channel \(channel) is out of range: \(layer) has \(range)"
        case let .badLayerSpec(spec, problem):
            return "--layer \(spec): \(problem) (the form is layer[:weight[:channels]], e.g. inception_4c_output:1:97,130)"
        }
    }

    public var errorDescription: String? { description }
}
