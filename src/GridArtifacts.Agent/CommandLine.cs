namespace GridArtifacts.Agent;

/// <summary>A usage error: a bad option or a missing value. The message is for stderr, after the tool's name.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>
/// The options of one subcommand, read the way Unix tools read theirs: <c>--name value</c>,
/// <c>--name=value</c>, short <c>-x value</c>, flags; <c>--</c> or the first word that is not an
/// option ends them, and every word after that is the command (as env, nohup and timeout do).
/// </summary>
internal sealed class CommandLine
{
    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _flags = new(StringComparer.Ordinal);

    /// <summary>The words after the options (the command, or a subcommand's operands).</summary>
    public IReadOnlyList<string> Rest { get; }

    /// <param name="valued">Options that take a value, long names without dashes; a short alias maps to its long name.</param>
    /// <param name="flags">Options without a value.</param>
    /// <param name="stopAtFirstWord">Whether the first word that is not an option ends the options (a command follows).</param>
    public CommandLine(IReadOnlyList<string> args, IReadOnlyDictionary<string, string> aliases, ISet<string> valued, ISet<string> flags, bool stopAtFirstWord)
    {
        var rest = new List<string>();
        var i = 0;
        for (; i < args.Count; i++)
        {
            var a = args[i];
            if (a == "--") { i++; break; }
            if (a.Length < 2 || a[0] != '-')
            {
                if (stopAtFirstWord) break;
                rest.Add(a);
                continue;
            }
            string name;
            string? inline = null;
            if (a.StartsWith("--", StringComparison.Ordinal))
            {
                var eq = a.IndexOf('=');
                name = eq < 0 ? a[2..] : a[2..eq];
                if (eq >= 0) inline = a[(eq + 1)..];
            }
            else
            {
                // -store, -run=x: a long option written with one dash (as PowerShell writes them)
                // would read as -s tore; said, not guessed.
                var word = a[1..].Split('=')[0];
                if (word.Length > 1 && (valued.Contains(word) || flags.Contains(word))) throw new UsageException($"'{a}' has one dash: write '-{a}'");
                if (!aliases.TryGetValue(a[1..2], out var longName)) throw new UsageException($"unknown option '{a}'");
                name = longName;
                if (a.Length > 2) inline = a[2..];
                if (inline?.StartsWith('=') == true) throw new UsageException($"write '-{a[1]} {inline[1..]}' or '--{longName}={inline[1..]}', not '{a}'");
            }
            if (aliases.TryGetValue(name, out var canonical)) name = canonical;
            if (flags.Contains(name))
            {
                if (inline is not null) throw new UsageException($"option '--{name}' takes no value");
                _flags.Add(name);
            }
            else if (valued.Contains(name))
            {
                var value = inline ?? (i + 1 < args.Count ? args[++i] : throw new UsageException($"option '--{name}' needs a value"));
                if (!_values.TryGetValue(name, out var list)) _values[name] = list = new List<string>();
                list.Add(value);
            }
            else
            {
                throw new UsageException($"unknown option '{a}'");
            }
        }
        for (; i < args.Count; i++) rest.Add(args[i]);
        Rest = rest;
    }

    public bool Has(string flag) => _flags.Contains(flag);

    /// <summary>The value of an option given once (the last one when given more often), or null.</summary>
    public string? Value(string name) => _values.TryGetValue(name, out var v) ? v[^1] : null;

    /// <summary>Every value of an option that may be given more than once.</summary>
    public IReadOnlyList<string> Values(string name) => _values.TryGetValue(name, out var v) ? v : Array.Empty<string>();

    /// <summary><c>NAME=VALUE</c> pairs (<c>--param lr=0.1</c>), in order; a later one wins.</summary>
    public Dictionary<string, string> Pairs(string name)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in Values(name))
        {
            var eq = pair.IndexOf('=');
            if (eq <= 0) throw new UsageException($"'--{name} {pair}' is not NAME=VALUE");
            d[pair[..eq]] = pair[(eq + 1)..];
        }
        return d;
    }
}
