import ArgumentParser
import Dreaming

extension DreamReduction: ExpressibleByArgument {}
