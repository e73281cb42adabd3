/// A config error, always naming where it is.
public struct ConfigError: Error, Equatable, CustomStringConvertible, Sendable {
    public var file: String
    public var line: Int
    public var directive: String?
    public var message: String
    public init(file: String, line: Int, directive: String?, message: String) {
        self.file = file
        self.line = line
        self.directive = directive
        self.message = message
    }
    public var description: String {
        if let d = directive { return "\(file):\(line): directive \"\(d)\": \(message)" }
        return "\(file):\(line): \(message)"
    }
}

/// One directive: `name arg...;` or `name arg... { children }`.
public struct Directive: Sendable, Equatable {
    public var name: String
    public var args: [String]
    public var line: Int
    public var block: [Directive]?
}

/// Turns nginx-like text into a directive tree: words, quoted strings, `;`, `{`, `}` and `#` comments.
enum DirectiveParser {
    enum Token: Equatable {
        case word(String, line: Int)
        case semicolon(line: Int)
        case open(line: Int)
        case close(line: Int)
    }

    static func tokenize(_ text: String, file: String) throws(ConfigError) -> [Token] {
        var tokens: [Token] = []
        var line = 1
        let chars = Array(text.unicodeScalars)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            switch c {
            case "\n": line += 1; i += 1
            case " ", "\t", "\r": i += 1
            case "#":
                while i < chars.count && chars[i] != "\n" { i += 1 }
            case ";": tokens.append(.semicolon(line: line)); i += 1
            case "{": tokens.append(.open(line: line)); i += 1
            case "}": tokens.append(.close(line: line)); i += 1
            case "\"", "'":
                let quote = c
                let startLine = line
                i += 1
                var s = ""
                while i < chars.count && chars[i] != quote {
                    if chars[i] == "\\" && i + 1 < chars.count { i += 1 }
                    if chars[i] == "\n" { line += 1 }
                    s.unicodeScalars.append(chars[i])
                    i += 1
                }
                guard i < chars.count else { throw ConfigError(file: file, line: startLine, directive: nil, message: "unterminated quoted string") }
                i += 1
                tokens.append(.word(s, line: startLine))
            default:
                var s = ""
                while i < chars.count && !" \t\r\n;{}#".unicodeScalars.contains(chars[i]) {
                    s.unicodeScalars.append(chars[i])
                    i += 1
                }
                tokens.append(.word(s, line: line))
            }
        }
        return tokens
    }

    static func parse(_ text: String, file: String) throws(ConfigError) -> [Directive] {
        let tokens = try tokenize(text, file: file)
        var pos = 0
        let result = try parseBlock(tokens, &pos, file: file, opener: nil)
        return result
    }

    private static func parseBlock(_ t: [Token], _ pos: inout Int, file: String, opener: (name: String, line: Int)?) throws(ConfigError) -> [Directive] {
        var out: [Directive] = []
        while pos < t.count {
            switch t[pos] {
            case .close(let line):
                guard opener != nil else { throw ConfigError(file: file, line: line, directive: nil, message: "unexpected \"}\"") }
                pos += 1
                return out
            case .semicolon(let line), .open(let line):
                throw ConfigError(file: file, line: line, directive: nil, message: "expected a directive name")
            case .word(let name, let line):
                pos += 1
                var args: [String] = []
                var done = false
                while pos < t.count && !done {
                    switch t[pos] {
                    case .word(let w, _):
                        args.append(w)
                        pos += 1
                    case .semicolon:
                        pos += 1
                        out.append(Directive(name: name, args: args, line: line, block: nil))
                        done = true
                    case .open:
                        pos += 1
                        let children = try parseBlock(t, &pos, file: file, opener: (name, line))
                        out.append(Directive(name: name, args: args, line: line, block: children))
                        done = true
                    case .close(let l):
                        throw ConfigError(file: file, line: l, directive: name, message: "missing \";\"")
                    }
                }
                if !done { throw ConfigError(file: file, line: line, directive: name, message: "missing \";\" at end of file") }
            }
        }
        if let o = opener {
            throw ConfigError(file: file, line: o.line, directive: o.name, message: "block is never closed: missing \"}\"")
        }
        return out
    }
}
