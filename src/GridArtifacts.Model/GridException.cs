namespace GridArtifacts.Model;

/// <summary>What went wrong, in terms a cmdlet maps onto an ErrorCategory.</summary>
public enum GridErrorKind
{
    NotFound,
    InvalidName,
    InvalidArgument,
    DamagedRecord,
    UnsafePath,
    IntegrityFailure,
    AlreadyExists,
    StoreUnavailable,
    AccessDenied,
    WriteFailed,
    /// <summary>Someone else holds it now (another capture agent runs the experiment).</summary>
    Busy,
    /// <summary>Protected from removal (Protect-GridRun) until unprotected.</summary>
    Protected,
    /// <summary>Not possible in this state or session (a prompt where none can be shown).</summary>
    InvalidOperation,
    /// <summary>Something this machine provides is not available now (a port to listen on).</summary>
    ResourceUnavailable,
    /// <summary>What was run did not succeed (an experiment failed or was lost).</summary>
    Failed,
}

/// <summary>
/// What a store found, for the code that acts on it (never read from <see cref="GridException.ErrorId"/>'s text).
/// </summary>
public enum GridErrorCause
{
    None,
    /// <summary>No object under the key (a folder store's missing file, S3's NoSuchKey or 404).</summary>
    ObjectMissing,
    /// <summary>The object is not the version asked for (S3's 412 on If-Match).</summary>
    VersionMismatch,
}

/// <summary>An error the user can act on: a stable id, a kind, the item it concerns, and a message that says what to do.</summary>
public class GridException : Exception
{
    public GridException(GridErrorKind kind, string errorId, string message, object? target = null, Exception? inner = null)
        : base(message, inner)
    {
        Kind = kind;
        ErrorId = errorId;
        Target = target;
    }

    public GridErrorKind Kind { get; }
    /// <summary>A stable identifier, used as the ErrorRecord's FullyQualifiedErrorId.</summary>
    public string ErrorId { get; }
    public object? Target { get; }
    /// <summary>What a store found, when the caller acts on it: a missing object, a version changed.</summary>
    public GridErrorCause Cause { get; init; }
    /// <summary>True when trying again may succeed (server busy, connection reset, body cut short).</summary>
    public bool IsTransient { get; init; }

    /// <summary>
    /// The server asked for less: 503 SlowDown, 429, or a refused connection. The process's
    /// concurrency backs off on it (and climbs again as requests succeed).
    /// </summary>
    public bool IsThrottling { get; init; }
}
