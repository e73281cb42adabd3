import Config
import Testing

/// Loading `text` fails at `line` with `directive` and a message containing `message`.
func expectConfigError(_ text: String, file: String, line: Int, directive: String, message: String,
                       sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try ConfigLoader.load(text: text, file: file)
        Issue.record("accepted: \(text)", sourceLocation: sourceLocation)
    } catch {
        #expect(error.line == line, "\(error)", sourceLocation: sourceLocation)
        #expect(error.directive == directive, "\(error)", sourceLocation: sourceLocation)
        #expect(error.message.contains(message), "\(error)", sourceLocation: sourceLocation)
    }
}
