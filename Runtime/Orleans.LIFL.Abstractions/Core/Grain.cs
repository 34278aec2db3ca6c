using Orleans.LIFL.Timers;

namespace Orleans.LIFL;

/// <summary>
/// Base class of grain implementations. The runtime constructs grains (with dependency injection into the
/// constructor); never call <c>new</c> on a grain class.
/// </summary>
public abstract class Grain
{
    [ThreadStatic]
#pragma warning disable IDE1006 // [ThreadStatic] fields are t_camelCase (dotnet/runtime convention)
    private static IGrainContext? t_constructing;
#pragma warning restore IDE1006

    protected Grain()
    {
        GrainContext = t_constructing
            ?? throw new InvalidOperationException(
                $"{GetType().Name} was constructed outside the runtime. Grains are created by the runtime on first call: use IGrainFactory.GetGrain.");
    }

    /// <summary>The activation this grain object belongs to.</summary>
    public IGrainContext GrainContext { get; }

    public GrainId GrainId => GrainContext.GrainId;

    /// <summary>"type/key", for logs.</summary>
    public string IdentityString => GrainContext.GrainId.ToString();

    protected IGrainFactory GrainFactory => GrainContext.GrainFactory;

    protected IServiceProvider ServiceProvider => GrainContext.ActivationServices;

    /// <summary>Runs before the first call is delivered. If it throws, the activation is discarded and the calls that
    /// were waiting for it fail with that exception.</summary>
    public virtual Task OnActivateAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Runs when the activation is collected, asked to deactivate, or its silo shuts down gracefully. It does
    /// not run when the silo dies.</summary>
    public virtual Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Deactivate this activation once no request is running or waiting.</summary>
    protected void DeactivateOnIdle() => GrainContext.DeactivateOnIdle();

    /// <summary>Keep the activation from being collected as idle for at least <paramref name="timeSpan"/>.</summary>
    protected void DelayDeactivation(TimeSpan timeSpan) => GrainContext.DelayDeactivation(timeSpan);

    protected IGrainTimer RegisterGrainTimer<TState>(Func<TState, CancellationToken, Task> callback, TState state, GrainTimerCreationOptions options) =>
        GrainContext.RegisterGrainTimer(callback, state, options);

    protected IGrainTimer RegisterGrainTimer<TState>(Func<TState, CancellationToken, Task> callback, TState state, TimeSpan dueTime, TimeSpan period) =>
        GrainContext.RegisterGrainTimer(callback, state, new GrainTimerCreationOptions(dueTime, period));

    protected IGrainTimer RegisterGrainTimer(Func<CancellationToken, Task> callback, GrainTimerCreationOptions options) =>
        GrainContext.RegisterGrainTimer(static (cb, ct) => cb(ct), callback, options);

    protected IGrainTimer RegisterGrainTimer(Func<CancellationToken, Task> callback, TimeSpan dueTime, TimeSpan period) =>
        RegisterGrainTimer(callback, new GrainTimerCreationOptions(dueTime, period));

    /// <summary>A reference to this grain, to hand to other grains.</summary>
    public TGrainInterface AsReference<TGrainInterface>()
        where TGrainInterface : IAddressable =>
        GrainContext.GrainFactory.GetGrain<TGrainInterface>(GrainContext.GrainId);

    /// <summary>Used by the runtime while it runs a grain constructor.</summary>
    internal static ConstructionScope BeginConstruction(IGrainContext context) => new(context);

    internal readonly ref struct ConstructionScope
    {
        private readonly IGrainContext? _previous;

        public ConstructionScope(IGrainContext context)
        {
            _previous = t_constructing;
            t_constructing = context;
        }

        public void Dispose() => t_constructing = _previous;
    }
}
