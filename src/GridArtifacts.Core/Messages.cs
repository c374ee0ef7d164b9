namespace GridArtifacts.Core;

/// <summary>Text for the verbose stream, posted by work that runs off the pipeline thread; the cmdlet writes it.</summary>
public sealed record VerboseMessage(string Text);

/// <summary>Text for the warning stream, posted by work that runs off the pipeline thread; the cmdlet writes it.</summary>
public sealed record WarningMessage(string Text);
