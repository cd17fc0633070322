/**
 * The values that travel between the job's operators. Each is a Flink POJO (public fields, no-arg
 * constructor, no nested collections of arrays), so Flink serializes it with its own POJO
 * serializer, never Kryo, and checkpointed buffers of them can evolve.
 */
package dinostream.pipeline.records;
