"""The particle engine's user side: landscapes, dynamics rules (SGD, Langevin, perturbed GD, SME), `simulate`
and its recorder, and the closed-form theory of SGD's cloud (`theory`, `modified_equations`,
`minibatch_moments`).
"""
