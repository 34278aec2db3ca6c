namespace Orleans.LIFL;

/// <summary>Base class of the errors raised by the runtime itself (not by grain code).</summary>
public class LiflException : Exception
{
    public LiflException(string message) : base(message)
    {
    }

    public LiflException(string message, Exception? inner) : base(message, inner)
    {
    }
}

/// <summary>A call did not get its response within its timeout.</summary>
public sealed class GrainCallTimeoutException : TimeoutException
{
    public GrainCallTimeoutException(string message) : base(message)
    {
    }
}

/// <summary>
/// A call would wait forever: it arrived at a non-reentrant activation that is itself waiting, further up the same
/// call chain, for this call to finish.
/// </summary>
public sealed class DeadlockException : LiflException
{
    public DeadlockException(string message, IReadOnlyList<string> callChain) : base(message)
    {
        CallChain = callChain;
    }

    /// <summary>As rebuilt in another process (the chain is in the message).</summary>
    public DeadlockException(string message) : this(message, [])
    {
    }

    /// <summary>The grains of the chain, outermost first, ending with the grain that was called again.</summary>
    public IReadOnlyList<string> CallChain { get; }
}

/// <summary>The silo that hosted (or was chosen to host) the target failed or left before it answered.</summary>
public sealed class SiloUnavailableException : LiflException
{
    public SiloUnavailableException(string message) : base(message)
    {
    }
}

/// <summary>A grain identity, interface or class the runtime does not know.</summary>
public sealed class GrainTypeResolutionException : LiflException
{
    public GrainTypeResolutionException(string message) : base(message)
    {
    }
}

/// <summary>An object of a type the runtime cannot copy or serialize crossed a grain call boundary.</summary>
public sealed class CodecNotFoundException : LiflException
{
    public CodecNotFoundException(string message) : base(message)
    {
    }
}

/// <summary>The client is not connected to any live gateway, or the runtime is shut down.</summary>
public sealed class RuntimeUnavailableException : LiflException
{
    public RuntimeUnavailableException(string message) : base(message)
    {
    }
}

/// <summary>A call was addressed to an observer that was deleted or whose host went away.</summary>
public sealed class ObserverNotFoundException : LiflException
{
    public ObserverNotFoundException(string message) : base(message)
    {
    }
}

/// <summary>An exception thrown in another process whose type cannot be rebuilt here; its type name and message are kept.</summary>
public sealed class RemoteGrainException : LiflException
{
    public RemoteGrainException(string remoteTypeName, string message) : base($"{remoteTypeName}: {message}")
    {
        RemoteTypeName = remoteTypeName;
    }

    public RemoteGrainException(string message) : this("unknown", message)
    {
    }

    public string RemoteTypeName { get; }
}
