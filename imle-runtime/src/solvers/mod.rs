//! Built-in MAP solvers. Each is an ordinary [`MapSolver`](crate::MapSolver) implementation,
//! used exactly like a user's own solver.

mod argmax;
mod digraph;
mod shortest_path;
mod spanning_tree;
mod topk;

pub use argmax::Argmax;
pub use digraph::{DigraphScratch, DigraphShortestPath};
pub use shortest_path::{DijkstraScratch, GridShortestPath, NegativeCosts, Neighbourhood};
pub use spanning_tree::{KruskalScratch, MaxSpanningTree};
pub use topk::TopK;
