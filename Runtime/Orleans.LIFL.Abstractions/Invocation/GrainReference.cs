using System.ComponentModel;

namespace Orleans.LIFL.Invocation;

/// <summary>
/// The runtime a grain reference sends its calls through (a silo or a client). Implemented by the runtime; generated
/// proxies only see this interface.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IGrainCallRuntime
{
    /// <summary>The factory of the runtime, for references created while handling a call.</summary>
    IGrainFactory GrainFactory { get; }

    /// <summary>Routes the request to its target. Never throws: failures complete the request with an error.</summary>
    void Send(GrainReference target, RequestBase request);
}

/// <summary>
/// A typed handle to a grain (or observer, or grain extension). Generated proxies derive from it. References are
/// immutable and may be passed in grain calls; calls made while a grain turn runs go through that grain's runtime.
/// </summary>
public abstract class GrainReference : IAddressable, IEquatable<GrainReference>
{
    protected GrainReference(GrainId grainId, IGrainCallRuntime runtime)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        GrainId = grainId;
        Runtime = runtime;
    }

    public GrainId GrainId { get; }

    /// <summary>The runtime that made this reference; used for calls made outside any grain turn.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public IGrainCallRuntime Runtime { get; }

    /// <summary>The grain interface this reference implements.</summary>
    public abstract Type InterfaceType { get; }

    /// <summary>A runtime-owned slot the routing layer may use to remember where the target lives.</summary>
    internal object? RoutingHint { get; set; }

    [EditorBrowsable(EditorBrowsableState.Never)]
    protected ValueTask<TResult> InvokeAsync<TResult>(Request<TResult> request)
    {
        Send(request);
        return request.AsValueTask();
    }

    [EditorBrowsable(EditorBrowsableState.Never)]
    protected ValueTask InvokeVoidAsync(Request<Unit> request)
    {
        Send(request);
        return request.Method.IsOneWay ? default : request.AsVoidValueTask();
    }

    private void Send(RequestBase request)
    {
        request.TargetId = GrainId;
        var runtime = Runtime;
        if (SynchronizationContext.Current is TurnContext turn)
        {
            if (turn.Scheduler is { } scheduler)
            {
                runtime = scheduler.Runtime;
            }

            if (!request.Method.IsOneWay)
            {
                request.Caller = turn;
            }
        }

        runtime.Send(this, request);
    }

    public bool Equals(GrainReference? other) =>
        other is not null && GrainId.Equals(other.GrainId) && InterfaceType == other.InterfaceType;

    public override bool Equals(object? obj) => Equals(obj as GrainReference);

    public override int GetHashCode() => GrainId.GetHashCode();

    public override string ToString() => $"{InterfaceType.Name}:{GrainId}";
}
